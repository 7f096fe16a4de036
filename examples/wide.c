/* Values that are not one machine word live across calls: 128-bit integers,
 * 256-bit and 32-bit vectors, structs passed by value. */
#include <stdio.h>
#include <string.h>

typedef int v8i __attribute__((vector_size(32)));
typedef unsigned char v4c __attribute__((vector_size(4)));
typedef short v2s __attribute__((vector_size(4)));

struct pair { long a, b; };

__attribute__((noinline)) static unsigned step(unsigned x) {
    /* A call deep enough to be interrupted (a loop: a migration point). */
    for (unsigned i = 0; i < (x & 7) + 4; i++) x = x * 1103515245u + 12345u + i;
    return x;
}

__attribute__((noinline)) static long pair_sum(struct pair p, unsigned k) {
    long s = p.a;
    unsigned r = step(k); /* p.b is live across this call */
    return s + p.b * (long)(r & 7);
}

int main(int argc, char **argv) {
    unsigned __int128 acc = ((unsigned __int128)0x0123456789abcdefULL << 64) | 0xfedcba9876543210ULL;
    v8i wide = {1, 2, 3, 4, 5, 6, 7, 8};
    v4c bytes = {1, 2, 3, 4};
    v2s shorts = {-3, 7};
    struct pair p = {(long)strlen(argv[0]) * 0, 11};
    unsigned seed = (unsigned)argc;
    for (int i = 0; i < 3000; i++) {
        unsigned r = step(seed + (unsigned)i); /* acc, wide, bytes, shorts live */
        acc = acc * 6364136223846793005ULL + r;
        wide = wide * 3 + (v8i){(int)r, 1, (int)(r >> 3), 2, 3, (int)(r >> 7), 5, 8};
        bytes = bytes * (v4c){3, 5, 7, 9} + (unsigned char)r;
        shorts = shorts + (v2s){(short)r, (short)(r >> 16)};
        p.a += pair_sum(p, r) & 0xffff;
        p.b += (long)(r & 3);
        if (i % 300 == 0)
            printf("i=%4d acc=%016llx%016llx wide=%d,%d,%d,%d,%d,%d,%d,%d bytes=%u,%u,%u,%u shorts=%d,%d p=%ld\n", i,
                   (unsigned long long)(acc >> 64), (unsigned long long)acc, wide[0], wide[1], wide[2], wide[3],
                   wide[4], wide[5], wide[6], wide[7], bytes[0], bytes[1], bytes[2], bytes[3], shorts[0],
                   shorts[1], p.a);
    }
    printf("final acc=%016llx%016llx p=%ld\n", (unsigned long long)(acc >> 64), (unsigned long long)acc, p.a);
    return 0;
}
