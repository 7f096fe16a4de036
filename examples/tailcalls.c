/* Sibling calls: a function that ends in `return g(...)` compiles to a jump,
 * so its frame is gone while g runs. A migration inside g finds g's frame
 * returning straight to the caller's caller, which calls g itself on restore
 * (hcc/src/instrument/mod.rs, is_sibling_call). Chains of them, direct and
 * through a function pointer, end in loops that poll and call. */
#include <stdio.h>

typedef unsigned long (*step_fn)(unsigned long, unsigned long);

__attribute__((noinline)) static unsigned long scramble(unsigned long h, unsigned long i) {
    h ^= i + 0x9e3779b97f4a7c15UL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdUL;
}

/* The loops where migrations happen: a call and a poll per iteration. */
__attribute__((noinline)) static unsigned long churn(unsigned long h, unsigned long n) {
    for (unsigned long i = 0; i < n; i++) {
        h = scramble(h, i);
        if ((h & 0xfff) == 7) printf("  rare value %lx at %lu\n", h, i);
    }
    return h;
}

__attribute__((noinline)) static unsigned long churn_odd(unsigned long h, unsigned long n) {
    unsigned long i = 0;
    while (i < n) {
        h = scramble(h, i * 3 + 1);
        i += 1 + (h & 1);
    }
    return h ^ n;
}

__attribute__((noinline)) static unsigned long churn_rev(unsigned long h, unsigned long n) {
    for (unsigned long i = n; i > 0; i--) h = scramble(h ^ i, i);
    return ~h;
}

static step_fn const table[3] = {churn, churn_odd, churn_rev};

/* Sibling calls, direct: two deep. */
__attribute__((noinline)) static unsigned long direct2(unsigned long h, unsigned long r) {
    return churn(h + r, 40 + r % 9);
}

__attribute__((noinline)) static unsigned long direct1(unsigned long h, unsigned long r) {
    return direct2(h ^ (r << 3), r);
}

/* A sibling call through a function pointer. */
__attribute__((noinline)) static unsigned long via_table(unsigned long h, unsigned long r) {
    return table[r % 3](h, 30 + r % 11);
}

/* Sibling calls whose returns merge into one block (a phi of both results). */
__attribute__((noinline)) static unsigned long pick(unsigned long h, unsigned long r) {
    if (r % 5 == 0) return churn_rev(h, 20 + r % 3);
    return churn_odd(h + 1, 25 + r % 4);
}

int main(void) {
    unsigned long h = 1469598103934665603UL;
    for (unsigned long r = 0; r < 600; r++) {
        h = (r & 1) ? via_table(h, r) : (r % 4 == 0) ? pick(h, r) : direct1(h, r);
        if (r % 100 == 99) printf("round %lu: %016lx\n", r + 1, h);
    }
    printf("final %016lx\n", h);
    return 0;
}
