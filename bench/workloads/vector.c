/* A tight numeric loop the vectorizer turns into SIMD: saxpy and a dot
 * product over float arrays, repeated. */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 2000;
    int n = 4096;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) { x[i] = (float)(i % 7) * 0.5f; y[i] = (float)(i % 5); }
    double dot = 0;
    for (int r = 0; r < reps; r++) {
        float a = 0.001f * (float)(r % 10);
        for (int i = 0; i < n; i++) y[i] = a * x[i] + y[i];
        float d = 0;
        for (int i = 0; i < n; i++) d += x[i] * y[i];
        dot += d;
    }
    printf("vector %d: %.1f\n", reps, dot);
    return 0;
}
