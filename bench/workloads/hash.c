/* Hashing: FNV-1a and a small open-addressing hash table of strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned long fnv(const char *s, size_t n) {
    unsigned long h = 1469598103934665603ul;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ul;
    return h;
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    size_t cap = 1;
    while (cap < (size_t)n * 2) cap <<= 1;
    char (*keys)[24] = calloc(cap, 24);
    long *vals = calloc(cap, sizeof *vals);
    long found = 0;
    char buf[24];
    for (int pass = 0; pass < 3; pass++)
        for (long i = 0; i < n; i++) {
            int len = snprintf(buf, sizeof buf, "key-%ld", (i * 7919) % n);
            size_t h = fnv(buf, (size_t)len) & (cap - 1);
            while (keys[h][0] && strcmp(keys[h], buf)) h = (h + 1) & (cap - 1);
            if (keys[h][0]) found++, vals[h]++;
            else memcpy(keys[h], buf, (size_t)len + 1), vals[h] = 1;
        }
    unsigned long s = 0;
    for (size_t i = 0; i < cap; i++) s = s * 3 + (unsigned long)vals[i];
    printf("hash %ld: %ld %lu\n", n, found, s);
    return 0;
}
