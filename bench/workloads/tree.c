/* Recursive code: binary trees built, walked and freed (the binary-trees
 * benchmark), and naive Fibonacci. */
#include <stdio.h>
#include <stdlib.h>
struct node { struct node *l, *r; };
static struct node *make(int d) {
    struct node *n = malloc(sizeof *n);
    if (d > 0) { n->l = make(d - 1); n->r = make(d - 1); } else n->l = n->r = 0;
    return n;
}
static long check(struct node *n) { return n->l ? 1 + check(n->l) + check(n->r) : 1; }
static void drop(struct node *n) { if (n->l) { drop(n->l); drop(n->r); } free(n); }
static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(int argc, char **argv) {
    int depth = argc > 1 ? atoi(argv[1]) : 16;
    long total = 0;
    for (int d = 4; d <= depth; d += 2) {
        int iters = 1 << (depth - d + 4);
        for (int i = 0; i < iters; i++) { struct node *t = make(d); total += check(t); drop(t); }
    }
    printf("tree %d: %ld fib %ld\n", depth, total, fib(depth + 10));
    return 0;
}
