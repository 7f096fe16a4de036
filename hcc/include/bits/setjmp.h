/* hcc: one jmp_buf size on every ISA (aarch64's, the larger), so structs
 * that hold a jmp_buf lay out alike in every variant and can migrate; the
 * buffer is re-armed after a migration. Replaces musl's per-ISA
 * bits/setjmp.h (x86_64 uses the first 8 words). */
typedef unsigned long long __jmp_buf[22];
