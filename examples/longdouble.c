/* long double values live across calls and loops: x87 extended (80 bits)
 * on x86_64, IEEE binary128 on aarch64. A migration carries them as
 * binary128 and converts exactly. Every value here is exact in 64 bits of
 * significand, so both ISAs print the same digits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A loop of data-dependent length polls (once per few iterations): a call
 * to it is a site, and the long doubles of its callers are live across it. */
__attribute__((noinline)) static unsigned long work(unsigned long h, int n) {
    unsigned long steps = 0;
    do h = (h ^ ++steps) * 1099511628211ul;
    while (steps < (unsigned long)n + (h >> 59));
    return h;
}

/* A long double argument and result; snprintf and strlen cannot reach a
 * migration point. */
__attribute__((noinline)) static long double scale(long double x, int k) {
    char buf[64];
    snprintf(buf, sizeof buf, "%d", k);
    return x * (long double)(strlen(buf) + 1) / 2.0L;
}

static unsigned long hash = 14695981039346656037ul;

/* Long doubles held across sites, beside its arguments. (A call that
 * returns a long double and may reach a migration point is no site, so the
 * result is a hash.) */
__attribute__((noinline)) static unsigned long step(long double acc, long double half, int i) {
    long double kept = acc + half;
    unsigned long h = work(hash, 40 + i % 9);
    long double s = scale(half, i);
    h = work(h, 30 + i % 5);
    return h ^ (unsigned long)(kept + s);
}

/* With an argument, the last line also prints 1/3 to 21 digits: the x87
 * value on x86_64 differs from binary128's in the 20th, so a run that
 * computed it on x86_64 prints x86_64's digits on either ISA only if its
 * conversion kept every bit. */
int main(int argc, char **argv) {
    (void)argv;
    volatile int one = 1; /* keeps the values below from being folded */
    long double acc = 0.0L, lo = 0.0L;
    long double tiny = 0x1p-16400L * one; /* an x87 value below double's range */
    long double big = 0x1.23456789abcdefp+1000L * one; /* and one above it */
    long double third = 1.0L / (long double)(one + 2);
    for (int i = 1; i <= 3000; i++) {
        long double half = (long double)i / 2.0L;
        hash = step(acc, half, i);
        acc = acc + half + scale(half, i) + (long double)(hash & 7) / 8.0L;
        lo -= (long double)(work(hash, 20) & 3) / 4.0L;
        /* Exact: the values stay what they were, on either ISA. */
        long double k = (long double)(2 + (hash & 1));
        tiny = tiny * k / k;
        big = big * k / k;
        if (i % 500 == 0)
            printf("%d: acc=%.6Lf lo=%.2Lf hash=%016lx tiny=%.3Lf big=%.6Lf third=%.18Lf\n", i, acc, lo, hash,
                   tiny * 0x1p+8200L * 0x1p+8200L, big * 0x1p-1000L * 0x1p+40L, third * 3.0L - 1.0L + 0.5L);
    }
    printf("done: %.4Lf %.2Lf %016lx\n", acc, lo, hash);
    if (argc > 1) printf("1/3 = %.20Le\n", third);
    return 0;
}
