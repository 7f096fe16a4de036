/* Migration latency workload: N MiB of heap in 64 KiB blocks, every page
 * written, then a long run of cheap migration points (a few per block while
 * building the heap, four million after it), then a pass that reads it all. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static unsigned long sum_block(const unsigned char *b, size_t n) {
    unsigned long s = 0;
    for (size_t i = 0; i < n; i += 4096) s += b[i];
    return s;
}

__attribute__((noinline)) static unsigned long tick(unsigned long s, long t) {
    return s * 31 + (unsigned long)t;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 1;
    size_t nblocks = mib * 16, bs = 64 << 10;
    unsigned char **blocks = malloc(nblocks * sizeof *blocks);
    for (size_t i = 0; i < nblocks; i++) {
        blocks[i] = malloc(bs);
        for (size_t j = 0; j < bs; j += 512) blocks[i][j] = (unsigned char)(i + j);
    }
    unsigned long s = 0;
    for (long t = 0; t < 4000000; t++) s = tick(s, t);
    for (size_t i = 0; i < nblocks; i++) s += sum_block(blocks[i], bs);
    printf("%zu MiB, checksum %lu\n", mib, s);
    return 0;
}
