/*
 * __hc_migrate_point for aarch64. Called with preserve_all from instrumented
 * code, so every register may hold a live value: save them all into a
 * struct hc_regs (hcrt.h) on the stack, call __hc_migrate_point_c with it,
 * and restore them all. x30 holds the return address (the site).
 *
 *   frame:  sp+0 x0..x30, sp+248 sp at the call, sp+256 pc, sp+264 sp,
 *           sp+272 q0..q31   (784 bytes, 16-aligned)
 */
    .section .text.__hc_migrate_point,"ax",%progbits
    .globl  __hc_migrate_point
    .type   __hc_migrate_point,%function
    .p2align 4
__hc_migrate_point:
    .cfi_startproc
    sub     sp, sp, #784
    .cfi_def_cfa_offset 784
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    .cfi_offset x30, -544
    add     x9, sp, #784
    str     x9, [sp, #248]
    str     x30, [sp, #256]
    str     x9, [sp, #264]
    stp     q0, q1, [sp, #272]
    stp     q2, q3, [sp, #304]
    stp     q4, q5, [sp, #336]
    stp     q6, q7, [sp, #368]
    stp     q8, q9, [sp, #400]
    stp     q10, q11, [sp, #432]
    stp     q12, q13, [sp, #464]
    stp     q14, q15, [sp, #496]
    stp     q16, q17, [sp, #528]
    stp     q18, q19, [sp, #560]
    stp     q20, q21, [sp, #592]
    stp     q22, q23, [sp, #624]
    stp     q24, q25, [sp, #656]
    stp     q26, q27, [sp, #688]
    stp     q28, q29, [sp, #720]
    stp     q30, q31, [sp, #752]
    mov     x0, sp
    bl      __hc_migrate_point_c
    ldp     q0, q1, [sp, #272]
    ldp     q2, q3, [sp, #304]
    ldp     q4, q5, [sp, #336]
    ldp     q6, q7, [sp, #368]
    ldp     q8, q9, [sp, #400]
    ldp     q10, q11, [sp, #432]
    ldp     q12, q13, [sp, #464]
    ldp     q14, q15, [sp, #496]
    ldp     q16, q17, [sp, #528]
    ldp     q18, q19, [sp, #560]
    ldp     q20, q21, [sp, #592]
    ldp     q22, q23, [sp, #624]
    ldp     q24, q25, [sp, #656]
    ldp     q26, q27, [sp, #688]
    ldp     q28, q29, [sp, #720]
    ldp     q30, q31, [sp, #752]
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #784
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size   __hc_migrate_point, .-__hc_migrate_point
/*
 * Blocking calls (hcrt.c "Blocking calls"). Each __wrap_<call> stub (made in
 * hcrt.c) loads its operation into w9 and branches here. The registers are
 * still the caller's as they will be when the call returns: save them as a
 * struct hc_regs whose pc is x30 (the call's site) and sp the caller's, and
 * run hc_blocking_c(regs, op), whose result is the call's.
 */
    .section .text.hc_blocking_entry,"ax",%progbits
    .globl  hc_blocking_entry
    .type   hc_blocking_entry,%function
    .p2align 4
hc_blocking_entry:
    .cfi_startproc
    sub     sp, sp, #784
    .cfi_def_cfa_offset 784
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    .cfi_offset x30, -544
    add     x10, sp, #784
    str     x10, [sp, #248]
    str     x30, [sp, #256]
    str     x10, [sp, #264]
    stp     q0, q1, [sp, #272]
    stp     q2, q3, [sp, #304]
    stp     q4, q5, [sp, #336]
    stp     q6, q7, [sp, #368]
    stp     q8, q9, [sp, #400]
    stp     q10, q11, [sp, #432]
    stp     q12, q13, [sp, #464]
    stp     q14, q15, [sp, #496]
    stp     q16, q17, [sp, #528]
    stp     q18, q19, [sp, #560]
    stp     q20, q21, [sp, #592]
    stp     q22, q23, [sp, #624]
    stp     q24, q25, [sp, #656]
    stp     q26, q27, [sp, #688]
    stp     q28, q29, [sp, #720]
    stp     q30, q31, [sp, #752]
    mov     x0, sp
    mov     w1, w9
    bl      hc_blocking_c
    ldr     x30, [sp, #240]
    add     sp, sp, #784
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size   hc_blocking_entry, .-hc_blocking_entry

/* long hc_blocking_syscall(long nr, long a, b, c, d, e, f): see x86_64.S. */
    .section .text.hc_blocking_syscall,"ax",%progbits
    .globl  hc_blocking_syscall
    .globl  hc_blocking_begin
    .globl  hc_blocking_end
    .globl  hc_blocking_cancel
    .type   hc_blocking_syscall,%function
    .p2align 4
hc_blocking_syscall:
    mov     x8, x0
    mov     x0, x1
    mov     x1, x2
    mov     x2, x3
    mov     x3, x4
    mov     x4, x5
    mov     x5, x6
hc_blocking_begin:
    adrp    x9, hc_blocking_request
    ldr     w9, [x9, :lo12:hc_blocking_request]
    cbnz    w9, hc_blocking_cancel
    svc     #0
hc_blocking_end:
    ret
hc_blocking_cancel:
    mov     x0, #-5000
    ret
    .size   hc_blocking_syscall, .-hc_blocking_syscall

/* __hc_resume_enter: a call re-issued on a resume path goes here in place
 * of its callee. It uses up the caller's frame record (__hc_resume_take)
 * and jumps to the function whose record is next, with the call's
 * arguments untouched (x0-x8 and q0-q7 saved around the call, x30 the
 * site's return address; stack arguments stay where they are). One stub
 * instead of a call to __hc_resume_take in every resume path. */
    .section .text.__hc_resume_enter,"ax",%progbits
    .globl  __hc_resume_enter
    .type   __hc_resume_enter,%function
    .p2align 4
__hc_resume_enter:
    .cfi_startproc
    stp     x29, x30, [sp, #-224]!
    .cfi_def_cfa_offset 224
    .cfi_offset x29, -224
    .cfi_offset x30, -216
    stp     x0, x1, [sp, #16]
    stp     x2, x3, [sp, #32]
    stp     x4, x5, [sp, #48]
    stp     x6, x7, [sp, #64]
    str     x8, [sp, #80]
    stp     q0, q1, [sp, #96]
    stp     q2, q3, [sp, #128]
    stp     q4, q5, [sp, #160]
    stp     q6, q7, [sp, #192]
    bl      __hc_resume_take
    mov     x16, x0
    ldp     q0, q1, [sp, #96]
    ldp     q2, q3, [sp, #128]
    ldp     q4, q5, [sp, #160]
    ldp     q6, q7, [sp, #192]
    ldr     x8, [sp, #80]
    ldp     x6, x7, [sp, #64]
    ldp     x4, x5, [sp, #48]
    ldp     x2, x3, [sp, #32]
    ldp     x0, x1, [sp, #16]
    ldp     x29, x30, [sp], #224
    .cfi_def_cfa_offset 0
    br      x16
    .cfi_endproc
    .size   __hc_resume_enter, .-__hc_resume_enter

/* void hc_switch_stack(void *top, void (*fn)(void *), void *arg): runs
 * fn(arg) on the stack ending at top; fn never returns. */
    .section .text.hc_switch_stack,"ax",%progbits
    .globl  hc_switch_stack
    .type   hc_switch_stack,%function
    .p2align 4
hc_switch_stack:
    mov     sp, x0
    mov     x29, #0
    mov     x30, #0
    mov     x0, x2
    blr     x1
    brk     #0
    .size   hc_switch_stack, .-hc_switch_stack
    .section .note.GNU-stack,"",%progbits
