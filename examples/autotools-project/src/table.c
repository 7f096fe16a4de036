#include "config.h"
#include "table.h"
#include <stdlib.h>
#include <string.h>

static unsigned long hash(const char *s)
{
    unsigned long h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

void table_init(struct table *t)
{
    t->nbuckets = 16;
    t->size = 0;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
}

static void grow(struct table *t)
{
    size_t n = t->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[hash(e->word) % n];
            b[hash(e->word) % n] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void table_add(struct table *t, const char *word)
{
    struct entry **p = &t->buckets[hash(word) % t->nbuckets];
    for (struct entry *e = *p; e; e = e->next) {
        if (strcmp(e->word, word) == 0) {
            e->count++;
            return;
        }
    }
    struct entry *e = malloc(sizeof *e);
    e->word = strdup(word);
    e->count = 1;
    e->next = *p;
    *p = e;
    if (++t->size > t->nbuckets * 2)
        grow(t);
}

static int by_count(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->word, y->word);
}

struct entry **table_sorted(const struct table *t)
{
    struct entry **v = malloc((t->size + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct entry *e = t->buckets[i]; e; e = e->next)
            v[n++] = e;
    qsort(v, n, sizeof *v, by_count);
    v[n] = NULL;
    return v;
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e->word);
            free(e);
        }
    }
    free(t->buckets);
}
