/* wordfreq [-n N] < text: the N most frequent words (case-folded). */
#include "config.h"
#include "table.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int opt, top = 10;
    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n') {
            fprintf(stderr, "usage: wordfreq [-n N] < text\n");
            return 2;
        }
        top = atoi(optarg);
    }
    struct table t;
    table_init(&t);
    char word[256];
    size_t len = 0;
    unsigned long words = 0;
    for (int c; (c = getchar()) != EOF;) {
        if (isalpha(c) && len < sizeof word - 1) {
            word[len++] = (char)tolower(c);
        } else if (len > 0) {
            word[len] = '\0';
            table_add(&t, word);
            words++;
            len = 0;
        }
    }
    if (len > 0) {
        word[len] = '\0';
        table_add(&t, word);
        words++;
    }
    struct entry **v = table_sorted(&t);
    printf("%lu words, %zu distinct (sizeof(long) = %d)\n", words, t.size, SIZEOF_LONG);
    for (int i = 0; i < top && v[i]; i++)
        printf("%7lu %s\n", v[i]->count, v[i]->word);
    free(v);
    table_free(&t);
    return 0;
}
