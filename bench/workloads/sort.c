/* Sorting: a hand-written quicksort and merge sort over pseudo-random keys. */
#include <stdio.h>
#include <stdlib.h>
static void quick(unsigned *a, long lo, long hi) {
    while (lo < hi) {
        unsigned p = a[(lo + hi) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { unsigned t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { quick(a, lo, j); lo = i; } else { quick(a, i, hi); hi = j; }
    }
}
static void merge(unsigned *a, unsigned *tmp, long n) {
    if (n < 2) return;
    long h = n / 2;
    merge(a, tmp, h);
    merge(a + h, tmp, n - h);
    long i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = a[i] <= a[j] ? a[i++] : a[j++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    for (long x = 0; x < n; x++) a[x] = tmp[x];
}
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    unsigned *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *t = malloc(n * sizeof *t), x = 12345;
    for (long i = 0; i < n; i++) { x = x * 1103515245 + 12345; a[i] = b[i] = x >> 3; }
    quick(a, 0, n - 1);
    merge(b, t, n);
    unsigned long s = 0;
    for (long i = 0; i < n; i += 97) s = s * 31 + a[i] + b[i];
    printf("sort %ld: %lu %d\n", n, s, a[n / 2] == b[n / 2]);
    return 0;
}
