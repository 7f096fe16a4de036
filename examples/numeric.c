/* Doubles and vectors live across calls. */
#include <stdio.h>
#include <math.h>

typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

static double wobble(double x) { return sin(x) * 0.5 + cos(x * 0.25); }

static v4f vstep(v4f v, float k) {
    v4f m = {k, k * 0.5f, k * 0.25f, 1.0f};
    return v * m + (v4f){0.1f, 0.2f, 0.3f, 0.4f};
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

int main(void) {
    double x = 0.5, y = 1.25;
    v4f v = {1, 2, 3, 4};
    v2d w = {0.5, -0.5};
    double a[64], b[64];
    for (int i = 0; i < 64; i++) { a[i] = i * 0.5; b[i] = 1.0 / (i + 1); }
    for (int i = 0; i < 400; i++) {
        double t = wobble(x + i);          /* x, y, v, w live across the call */
        x = x * 0.999 + t * 0.001;
        y = y + t * x;
        v = vstep(v, (float)(t * 0.5));
        w = w * (v2d){0.999, 1.001} + (v2d){t, -t} * 0.001;
        if (i % 40 == 0)
            printf("i=%3d x=%.12f y=%.12f v=(%.6f %.6f %.6f %.6f) w=(%.9f %.9f) dot=%.9f\n", i, x, y, v[0], v[1],
                   v[2], v[3], w[0], w[1], dot(a, b, 64));
        a[i % 64] += t;
    }
    printf("final %.15g %.15g\n", x, y);
    return 0;
}
