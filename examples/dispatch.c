/* A computed-goto bytecode interpreter, dispatching as Lua's luaV_execute
 * and CPython's eval loop do: `goto *labels[op]` through a static table of
 * label addresses. A migration stops it inside an opcode (an indirect call,
 * printf, or a nested run of the interpreter); after a restore the function
 * runs on in its resume copy, whose table must hold the copy's own labels. */
#include <stdio.h>

enum { PUSH, ADD, MUL, MOD, DUP, SWAP, DROP, DEC, JNZ, HASH, SHOW, CALL, HALT };

typedef unsigned long (*hasher)(unsigned long, long);
static unsigned long fnv(unsigned long h, long v) { return (h ^ (unsigned long)v) * 1099511628211ul; }
static unsigned long rot(unsigned long h, long v) { return (h << 7 | h >> 57) + (unsigned long)v; }
/* Volatile: the calls stay indirect, so they are migration points. */
static hasher volatile hashers[2] = {fnv, rot};

/* The sub-program CALL runs: (x) -> (x * x + 3) % 65521, on its own stack. */
static const long square[] = {DUP, MUL, PUSH, 3, ADD, PUSH, 65521, MOD, HALT};

static long run(const long *code, long *stack, long depth, unsigned long *hash) {
    static const void *const labels[] = {&&op_push, &&op_add, &&op_mul, &&op_mod, &&op_dup,
                                         &&op_swap, &&op_drop, &&op_dec, &&op_jnz, &&op_hash,
                                         &&op_show, &&op_call, &&op_halt};
    long *sp = stack;
    const long *pc = code;
#define NEXT goto *labels[*pc++]
    NEXT;
op_push:
    *sp++ = *pc++;
    NEXT;
op_add:
    sp--;
    sp[-1] += sp[0];
    NEXT;
op_mul:
    sp--;
    sp[-1] *= sp[0];
    NEXT;
op_mod:
    sp--;
    sp[-1] %= sp[0];
    NEXT;
op_dup:
    *sp = sp[-1];
    sp++;
    NEXT;
op_swap: {
    long t = sp[-1];
    sp[-1] = sp[-2];
    sp[-2] = t;
    NEXT;
}
op_drop:
    sp--;
    NEXT;
op_dec:
    sp[-1]--;
    NEXT;
op_jnz: {
    long to = *pc++;
    if (sp[-1]) pc = code + to;
    NEXT;
}
op_hash:
    *hash = hashers[sp[-1] & 1](*hash, sp[-1]);
    NEXT;
op_show:
    /* Every 5000th count: the count, the value under it, the hash so far. */
    if (sp[-1] % 5000 == 0) printf("depth %ld count %ld value %ld hash %016lx\n", depth, sp[-1], sp[-2], *hash);
    NEXT;
op_call: {
    long inner[8] = {sp[-1]};
    run(square, inner + 1, depth + 1, hash);
    sp[-1] = inner[0];
    NEXT;
}
op_halt:
    return sp - stack;
}

int main(void) {
    /* value count: loop { swap; value = (value*31+7) % 1000003; call;
     * hash; swap; show; dec; jnz } */
    const long code[] = {PUSH, 1,    PUSH, 40000, SWAP, PUSH, 31,   MUL, PUSH, 7,   ADD, PUSH, 1000003,
                         MOD,  CALL, HASH, SWAP,  SHOW, DEC,  JNZ,  4,   DROP, HALT};
    long stack[64];
    unsigned long hash = 14695981039346656037ul;
    long n = run(code, stack, 0, &hash);
    printf("%ld values left, top %ld, hash %016lx\n", n, stack[0], hash);
    return 0;
}
