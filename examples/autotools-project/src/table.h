#ifndef TABLE_H
#define TABLE_H
#include <stddef.h>

struct entry {
    char *word;
    unsigned long count;
    struct entry *next;
};

struct table {
    struct entry **buckets;
    size_t nbuckets, size;
};

void table_init(struct table *t);
void table_add(struct table *t, const char *word);
/* Entries sorted by count (descending), then word; caller frees the array. */
struct entry **table_sorted(const struct table *t);
void table_free(struct table *t);

#endif
