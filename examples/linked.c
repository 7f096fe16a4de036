/* Heap-linked structures with function pointers, globals and static locals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shape;
struct ops {
    const char *name;
    double (*area)(const struct shape *);
    void (*grow)(struct shape *, double);
};
struct shape {
    const struct ops *ops;
    double a, b;
    struct shape *next;
    char label[24];
};

static double rect_area(const struct shape *s) { return s->a * s->b; }
static double tri_area(const struct shape *s) { return 0.5 * s->a * s->b; }
static void grow_both(struct shape *s, double f) { s->a *= f; s->b *= f; }
static void grow_one(struct shape *s, double f) { s->a += f; }

static const struct ops RECT = {"rect", rect_area, grow_both};
static const struct ops TRI = {"tri", tri_area, grow_one};

struct shape *all_shapes;   /* global: head of the list */
int created;                /* global counter */
static long checksum = 17;  /* initialized static global */

static struct shape *make(int i) {
    static int serial;      /* static local */
    struct shape *s = malloc(sizeof *s);
    s->ops = (i % 3 == 0) ? &TRI : &RECT;
    s->a = 1.0 + i % 7;
    s->b = 2.0 + i % 5;
    s->next = all_shapes;
    snprintf(s->label, sizeof s->label, "%s-%d", s->ops->name, ++serial);
    all_shapes = s;
    created++;
    return s;
}

static double total_area(void) {
    double t = 0;
    for (struct shape *s = all_shapes; s; s = s->next) t += s->ops->area(s);
    return t;
}

int main(void) {
    for (int round = 0; round < 60; round++) {
        for (int i = 0; i < 50; i++) make(round * 50 + i);
        int k = 0;
        for (struct shape *s = all_shapes; s; s = s->next, k++)
            if (k % 4 == round % 4) s->ops->grow(s, 1.01);
        double t = total_area();
        checksum = checksum * 31 + (long)(t * 1000) % 1000003;
        printf("round %2d: %d shapes, area %.3f, first %s\n", round, created, t, all_shapes->label);
    }
    /* Free in order, checking labels survived. */
    int n = 0;
    while (all_shapes) {
        struct shape *s = all_shapes;
        all_shapes = s->next;
        if (strncmp(s->label, s->ops->name, strlen(s->ops->name)) != 0) printf("bad label %s\n", s->label);
        free(s);
        n++;
    }
    printf("freed %d, checksum %ld\n", n, checksum);
    return 0;
}
