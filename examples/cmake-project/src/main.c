/* hc-stats N: summary statistics of N samples from a few distributions. */
#include "stats.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    double *v = malloc(n * sizeof *v);
    unsigned long long state = 42;
    const char *names[] = {"uniform", "exponential", "normal"};
    if (!v || n == 0) {
        fprintf(stderr, "hc-stats: need N > 0\n");
        return 2;
    }
    for (int d = 0; d < 3; d++) {
        for (size_t i = 0; i < n; i++) {
            double u = sample(&state);
            if (d == 1)
                u = -log(1 - u);
            else if (d == 2)
                u = sqrt(-2 * log(1 - u)) * cos(2 * M_PI * sample(&state));
            v[i] = u;
        }
        struct summary s = summarize(v, n);
        printf("%-12s mean %.6f stddev %.6f median %.6f min %.6f max %.6f\n", names[d], s.mean,
               s.stddev, s.median, s.min, s.max);
    }
    free(v);
    return 0;
}
