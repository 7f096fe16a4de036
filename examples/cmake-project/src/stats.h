#ifndef STATS_H
#define STATS_H
#include <stddef.h>

struct summary {
    double mean, stddev, median, min, max;
};

/* Summarizes n samples (sorts them in place). */
struct summary summarize(double *v, size_t n);
/* A deterministic pseudo-random sample in [0, 1). */
double sample(unsigned long long *state);

#endif
