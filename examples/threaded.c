/* Direct-threaded interpreters: the program is translated once into label
 * addresses kept in memory (and, for the second interpreter, into label
 * offsets from a base label, as OCaml's bytecode interpreter keeps them),
 * then run many times. A migration finds those addresses in memory, so
 * they must mean the same label on every ISA (hcc's labels.rs). */
#include <stdio.h>
#include <stdlib.h>
enum { ADD, MIX, DEC, JNZ, HALT };
static const int prog[] = { ADD, MIX, DEC, JNZ, 0, HALT };
#define N (int)(sizeof prog / sizeof *prog)
static void **code; /* built on the first call, kept for the next ones */

static __attribute__((noinline)) long run(long r) {
    static void *const labels[] = { &&add, &&mix, &&dec, &&jnz, &&halt };
    if (!code) {
        code = malloc(sizeof(void *) * N);
        for (int i = 0; i < N; i++)
            code[i] = prog[i] == 0 && i && prog[i - 1] == JNZ ? (void *)0 : labels[prog[i]];
    }
    long acc = 0;
    int pc = 0;
    goto *code[pc++];
add: acc += r; goto *code[pc++];
mix: acc ^= acc >> 7; goto *code[pc++];
dec: r--; goto *code[pc++];
jnz: if (r) pc = prog[pc]; else pc++; goto *code[pc++];
halt: return acc;
}

static int offsets[N];
static __attribute__((noinline)) long run_offsets(long r) {
    if (!offsets[N - 1]) {
        const int table[] = { &&add - &&add, &&mix - &&add, &&dec - &&add, &&jnz - &&add, &&halt - &&add };
        for (int i = 0; i < N; i++) offsets[i] = table[prog[i]];
    }
    long acc = 1;
    int pc = 0;
    goto *(&&add + offsets[pc++]);
add: acc += r * 3; goto *(&&add + offsets[pc++]);
mix: acc ^= acc >> 5; goto *(&&add + offsets[pc++]);
dec: r--; goto *(&&add + offsets[pc++]);
jnz: if (r) pc = prog[pc]; else pc++; goto *(&&add + offsets[pc++]);
halt: return acc;
}

int main(void) {
    long total = 0;
    for (int k = 0; k < 40; k++) {
        total += run(100000 + k);
        total ^= run_offsets(50000 + k);
        if (k % 10 == 9) printf("%d %ld\n", k, total);
    }
    return 0;
}
