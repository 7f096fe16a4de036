/* A call-heavy bytecode interpreter: a stack machine whose opcodes are
 * functions called through a table. */
#include <stdio.h>
#include <stdlib.h>
enum { PUSH, ADD, MUL, DUP, SWAP, DROP, JNZ, DEC, HALT };
struct vm { long stack[64]; int sp, pc; };
typedef void (*op_fn)(struct vm *, const long *);
static void op_push(struct vm *m, const long *c) { m->stack[m->sp++] = c[m->pc + 1]; m->pc += 2; }
static void op_add(struct vm *m, const long *c) { (void)c; m->sp--; m->stack[m->sp - 1] += m->stack[m->sp]; m->pc++; }
static void op_mul(struct vm *m, const long *c) { (void)c; m->sp--; m->stack[m->sp - 1] = m->stack[m->sp - 1] * m->stack[m->sp] % 1000003; m->pc++; }
static void op_dup(struct vm *m, const long *c) { (void)c; m->stack[m->sp] = m->stack[m->sp - 1]; m->sp++; m->pc++; }
static void op_swap(struct vm *m, const long *c) { (void)c; long t = m->stack[m->sp - 1]; m->stack[m->sp - 1] = m->stack[m->sp - 2]; m->stack[m->sp - 2] = t; m->pc++; }
static void op_drop(struct vm *m, const long *c) { (void)c; m->sp--; m->pc++; }
static void op_jnz(struct vm *m, const long *c) { m->pc = m->stack[m->sp - 1] ? (int)c[m->pc + 1] : m->pc + 2; }
static void op_dec(struct vm *m, const long *c) { (void)c; m->stack[m->sp - 1]--; m->pc++; }
static const op_fn ops[] = {op_push, op_add, op_mul, op_dup, op_swap, op_drop, op_jnz, op_dec};
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 3000000;
    /* acc n: loop { swap; acc = acc*3+7; swap; dec; jnz } */
    const long code[] = {PUSH, 1, PUSH, n, SWAP, PUSH, 3, MUL, PUSH, 7, ADD, SWAP, DEC, JNZ, 4, DROP, HALT};
    struct vm m = {.sp = 0, .pc = 0};
    while (code[m.pc] != HALT) ops[code[m.pc]](&m, code);
    printf("interp %ld: %ld\n", n, m.stack[0]);
    return 0;
}
