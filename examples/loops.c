/* Loops hcc reshapes so they poll less (hcc/src/instrument/version.rs):
 * short counted loops run a poll-free copy, long ones the polled loop, and
 * small loops with data-dependent exits are unrolled with one poll per four
 * iterations — including values that rotate through the loop's phis
 * (Fibonacci, Euclid), scans, early exits and values used after the loop.
 * Its output must equal a plain clang build's, natively and migrated. */
#include <stdio.h>
#include <stdlib.h>

static unsigned data[1 << 17];

__attribute__((noinline)) static unsigned long fib_below(unsigned long limit) {
    unsigned long a = 0, b = 1, n = 0;
    while (b < limit) {
        unsigned long t = a + b;
        a = b;
        b = t;
        n++;
    }
    return a * 31 + n;
}

__attribute__((noinline)) static unsigned long gcd(unsigned long a, unsigned long b) {
    while (b) {
        unsigned long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

__attribute__((noinline)) static long scan(long i, unsigned p) {
    while (data[i] < p) i++;
    return i;
}

__attribute__((noinline)) static unsigned long counted(long n, unsigned k) {
    unsigned long s = 0;
    for (long i = 0; i < n; i++) s += (unsigned long)data[i] * (i ^ k);
    return s;
}

__attribute__((noinline)) static unsigned long down(long n) {
    unsigned long s = 7;
    for (long i = n; i > 0; i -= 3) s = s * 3 + data[i];
    return s;
}

__attribute__((noinline)) static long find(long n, unsigned key, unsigned *last) {
    long i;
    unsigned seen = 0;
    for (i = 0; i < n; i++) {
        seen = data[i];
        if (seen == key) break;
    }
    *last = seen;
    return i;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 60;
    unsigned x = 2463534242u;
    for (long i = 0; i < (1 << 17); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = x % 1000;
    }
    data[(1 << 17) - 1] = 1000; /* scan's sentinel */
    unsigned long total = 0;
    for (int r = 0; r < rounds; r++) {
        unsigned last = 0;
        unsigned long f = fib_below(1000ul + (unsigned long)r * 7919ul * 7919ul);
        unsigned long g = gcd(1071ul * (unsigned long)(r + 1) * 97ul, 462ul * (unsigned long)(r + 3));
        long s = scan(r * 100, 990);
        unsigned long c1 = counted(1000 + r, (unsigned)r);
        unsigned long c2 = counted(100000 + r, (unsigned)r);
        unsigned long d = down(90000 + r);
        long at = find(1 << 17, (unsigned)(r * 13 % 1000), &last);
        total = total * 1000003 + f + g + (unsigned long)s + c1 + c2 + d + (unsigned long)at + last;
        if (r % 10 == 0)
            printf("round %d: fib %lu gcd %lu scan %ld counted %lu %lu down %lu find %ld %u\n", r, f, g, s, c1, c2,
                   d, at, last);
    }
    printf("total %lu\n", total);
    return 0;
}
