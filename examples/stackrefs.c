/* Address-taken locals and arrays, with pointers to them stored in the heap:
 * they live on the shadow stack, which migrates byte for byte. */
#include <stdio.h>
#include <stdlib.h>

struct ref {
    int *slot;            /* points into a caller's local array */
    long *acc;            /* points to a caller's local scalar */
};

static void bump(struct ref *r, int i) {
    r->slot[i % 8] += i;
    *r->acc += r->slot[(i + 3) % 8];
}

static long work(int rounds) {
    int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    long acc = 0;
    struct ref *r = malloc(sizeof *r);
    r->slot = table;
    r->acc = &acc;
    for (int i = 0; i < rounds; i++) bump(r, i);
    free(r);
    long t = acc;
    for (int i = 0; i < 8; i++) t = t * 3 + table[i];
    return t;
}

static long nested(int depth) {
    char buf[64];
    snprintf(buf, sizeof buf, "level-%d", depth);
    long below = depth > 0 ? nested(depth - 1) : work(500);
    long h = below;
    for (char *p = buf; *p; p++) h = h * 131 + *p;
    return h;
}

/* A temporary whose address only a slow path takes: its shadow frame is
 * taken and given back around that path (a lifetime episode), and a
 * migration below `fill` carries the frame's address across. */
static __attribute__((noinline)) void fill(long *out, int k) {
    out[0] = nested(k % 3) ^ k;
    out[1] += k;
}

static __attribute__((noinline)) long lookup(int key) {
    if (key % 5 != 0) return (long)key * 3;
    long tmp[2] = {0, key};
    fill(tmp, key);
    return tmp[0] + tmp[1];
}

int main(void) {
    for (int k = 0; k < 30; k++) printf("k=%d work=%ld nested=%ld\n", k, work(100 + k), nested(k % 10));
    long sum = 0;
    for (int key = 0; key < 40; key++) sum += lookup(key);
    printf("lookup=%ld\n", sum);
    return 0;
}
