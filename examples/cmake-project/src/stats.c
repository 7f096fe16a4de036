#include "stats.h"
#include <math.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct summary summarize(double *v, size_t n)
{
    struct summary s = {0};
    double sum = 0, sq = 0;
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.mean = sum / n;
    for (size_t i = 0; i < n; i++)
        sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.stddev = sqrt(sq / n);
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

double sample(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (*state >> 11) * (1.0 / 9007199254740992.0);
}
