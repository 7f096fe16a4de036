/* Deep recursion: thousands of frames are live when a migration happens, each
 * holding values it needs after its callee returns. */
#include <stdio.h>
#include <stdlib.h>

static unsigned long mix(unsigned long h, unsigned long v) {
    h ^= v + 0x9e3779b97f4a7c15ul + (h << 6) + (h >> 2);
    return h;
}

/* Every level keeps `depth`, `seed` and `local` live across the recursive call. */
static unsigned long descend(int depth, unsigned long seed) {
    unsigned long local = mix(seed, (unsigned long)depth * 2654435761u);
    if (depth == 0) {
        unsigned long acc = local;
        for (int i = 0; i < 200; i++) acc = mix(acc, (unsigned long)i);
        return acc;
    }
    unsigned long below = descend(depth - 1, local);
    return mix(below, local ^ (unsigned long)depth);
}

/* Mutual recursion through a function pointer. */
static int odd(int n);
static int even(int n) { return n == 0 ? 1 : odd(n - 1); }
static int odd(int n) {
    int (*next)(int) = even;
    return n == 0 ? 0 : next(n - 1);
}

int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 2000;
    unsigned long total = 0;
    for (int round = 0; round < 40; round++) {
        unsigned long h = descend(depth + round, (unsigned long)round);
        total = mix(total, h);
        printf("round %2d: depth %d hash %016lx\n", round, depth + round, h);
    }
    printf("even(%d) = %d, odd(%d) = %d\n", 1501, even(1501), 1501, odd(1501));
    printf("total %016lx\n", total);
    return (int)(total & 0x3f);
}
