/* Large blocks and mappings that grow, shrink and are discarded after a
 * migration: realloc of a large block (musl grows it with mremap), mremap
 * of an anonymous mapping (the new pages must read as zeros, as must pages
 * after MADV_DONTNEED). Restore maps large memory from a file; none of
 * that may show. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define KIB 1024ul

__attribute__((noinline)) static unsigned long tick(unsigned long s, long t) {
    return s * 31 + (unsigned long)t;
}

/* Pattern bytes of block `id`; a bad byte is reported once. */
static int check(const unsigned char *p, size_t from, size_t to, int id, const char *what) {
    for (size_t i = from; i < to; i++)
        if (p[i] != (unsigned char)(i * 7 + (size_t)id)) {
            printf("%s: byte %zu is %u, not %u\n", what, i, p[i], (unsigned char)(i * 7 + (size_t)id));
            return 1;
        }
    return 0;
}

static void fill(unsigned char *p, size_t from, size_t to, int id) {
    for (size_t i = from; i < to; i++) p[i] = (unsigned char)(i * 7 + (size_t)id);
}

static size_t nonzero(const unsigned char *p, size_t from, size_t to) {
    size_t n = 0;
    for (size_t i = from; i < to; i++) n += p[i] != 0;
    return n;
}

int main(void) {
    size_t small = 300 * KIB, big = 8 * 1024 * KIB, map = 256 * KIB, wide = 1024 * KIB;
    unsigned char *block = malloc(small);
    unsigned char *m = mmap(0, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *gone = mmap(0, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!block || m == MAP_FAILED || gone == MAP_FAILED) return 1;
    fill(block, 0, small, 1);
    fill(m, 0, map, 2);
    fill(gone, 0, map, 3);
    int bad = 0;
    unsigned long s = 0;
    for (int round = 0; round < 3; round++) {
        /* Migration points: about 20000 per round. */
        for (long t = 0; t < 20000; t++) s = tick(s, t);
        /* The block grows (its new part filled), shrinks, grows again. */
        block = realloc(block, big);
        if (!block) return 2;
        bad |= check(block, 0, small, 1, "grown block");
        memset(block + small, 0x5a, big - small);
        block = realloc(block, small);
        bad |= check(block, 0, small, 1, "shrunk block");
        /* The mapping grows: old bytes stay, new pages are zeros. */
        unsigned char *g = mremap(m, map, wide, MREMAP_MAYMOVE);
        if (g == MAP_FAILED) return 3;
        bad |= check(g, 0, map, 2, "grown mapping");
        printf("round %d: grown mapping has %zu nonzero new bytes\n", round, nonzero(g, map, wide));
        /* ... and shrinks back to its first pages, which stay. */
        m = mremap(g, wide, map, 0);
        if (m == MAP_FAILED) return 4;
        /* Discarded pages read as zeros; the rest stays. */
        madvise(gone + map / 2, map / 2, MADV_DONTNEED);
        bad |= check(gone, 0, map / 2, 3, "kept half");
        printf("round %d: discarded half has %zu nonzero bytes\n", round, nonzero(gone, map / 2, map));
        fill(gone, map / 2, map, 3);
    }
    printf("checksum %lu, %s\n", s, bad ? "damaged" : "intact");
    return bad;
}
