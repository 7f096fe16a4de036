/*
 * __hc_migrate_point for x86_64. Called with preserve_all from instrumented
 * code, so every register may hold a live value: save them all into a
 * struct hc_regs (hcrt.h) on the stack, call __hc_migrate_point_c with it,
 * and restore them all.
 *
 *   entry:  [rsp] = return address (the site)     rsp = site's sp - 8
 *   frame:  rsp+0   gpr[32] (DWARF order)
 *           rsp+256 pc, rsp+264 sp, rsp+272 xmm0..15 (rsp+528.. unused vec slots)
 *           rsp+792 return address
 */
    .section .text.__hc_migrate_point,"ax",@progbits
    .globl  __hc_migrate_point
    .type   __hc_migrate_point,@function
    .p2align 4
__hc_migrate_point:
    .cfi_startproc
    subq    $792, %rsp
    .cfi_def_cfa_offset 800
    movq    %rax, 0(%rsp)
    movq    %rdx, 8(%rsp)
    movq    %rcx, 16(%rsp)
    movq    %rbx, 24(%rsp)
    movq    %rsi, 32(%rsp)
    movq    %rdi, 40(%rsp)
    movq    %rbp, 48(%rsp)
    leaq    800(%rsp), %rax
    movq    %rax, 56(%rsp)
    movq    %rax, 264(%rsp)
    movq    %r8, 64(%rsp)
    movq    %r9, 72(%rsp)
    movq    %r10, 80(%rsp)
    movq    %r11, 88(%rsp)
    movq    %r12, 96(%rsp)
    movq    %r13, 104(%rsp)
    movq    %r14, 112(%rsp)
    movq    %r15, 120(%rsp)
    movq    792(%rsp), %rax
    movq    %rax, 256(%rsp)
    movups  %xmm0, 272(%rsp)
    movups  %xmm1, 288(%rsp)
    movups  %xmm2, 304(%rsp)
    movups  %xmm3, 320(%rsp)
    movups  %xmm4, 336(%rsp)
    movups  %xmm5, 352(%rsp)
    movups  %xmm6, 368(%rsp)
    movups  %xmm7, 384(%rsp)
    movups  %xmm8, 400(%rsp)
    movups  %xmm9, 416(%rsp)
    movups  %xmm10, 432(%rsp)
    movups  %xmm11, 448(%rsp)
    movups  %xmm12, 464(%rsp)
    movups  %xmm13, 480(%rsp)
    movups  %xmm14, 496(%rsp)
    movups  %xmm15, 512(%rsp)
    movq    %rsp, %rdi
    call    __hc_migrate_point_c
    movups  272(%rsp), %xmm0
    movups  288(%rsp), %xmm1
    movups  304(%rsp), %xmm2
    movups  320(%rsp), %xmm3
    movups  336(%rsp), %xmm4
    movups  352(%rsp), %xmm5
    movups  368(%rsp), %xmm6
    movups  384(%rsp), %xmm7
    movups  400(%rsp), %xmm8
    movups  416(%rsp), %xmm9
    movups  432(%rsp), %xmm10
    movups  448(%rsp), %xmm11
    movups  464(%rsp), %xmm12
    movups  480(%rsp), %xmm13
    movups  496(%rsp), %xmm14
    movups  512(%rsp), %xmm15
    movq    0(%rsp), %rax
    movq    8(%rsp), %rdx
    movq    16(%rsp), %rcx
    movq    24(%rsp), %rbx
    movq    32(%rsp), %rsi
    movq    40(%rsp), %rdi
    movq    48(%rsp), %rbp
    movq    64(%rsp), %r8
    movq    72(%rsp), %r9
    movq    80(%rsp), %r10
    movq    88(%rsp), %r11
    movq    96(%rsp), %r12
    movq    104(%rsp), %r13
    movq    112(%rsp), %r14
    movq    120(%rsp), %r15
    addq    $792, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size   __hc_migrate_point, .-__hc_migrate_point
/*
 * Blocking calls (hcrt.c "Blocking calls"). Each __wrap_<call> stub (made in
 * hcrt.c) loads its operation into r11d and jumps here. The registers are
 * still the caller's as they will be when the call returns: save them as a
 * struct hc_regs whose pc is the return address (the call's site) and sp
 * the caller's after the return, and run hc_blocking_c(regs, op), whose
 * result is the call's.
 */
    .section .text.hc_blocking_entry,"ax",@progbits
    .globl  hc_blocking_entry
    .type   hc_blocking_entry,@function
    .p2align 4
hc_blocking_entry:
    .cfi_startproc
    subq    $792, %rsp
    .cfi_def_cfa_offset 800
    movq    %rax, 0(%rsp)
    movq    %rdx, 8(%rsp)
    movq    %rcx, 16(%rsp)
    movq    %rbx, 24(%rsp)
    movq    %rsi, 32(%rsp)
    movq    %rdi, 40(%rsp)
    movq    %rbp, 48(%rsp)
    leaq    800(%rsp), %rax
    movq    %rax, 56(%rsp)
    movq    %rax, 264(%rsp)
    movq    %r8, 64(%rsp)
    movq    %r9, 72(%rsp)
    movq    %r10, 80(%rsp)
    movq    %r11, 88(%rsp)
    movq    %r12, 96(%rsp)
    movq    %r13, 104(%rsp)
    movq    %r14, 112(%rsp)
    movq    %r15, 120(%rsp)
    movq    792(%rsp), %rax
    movq    %rax, 256(%rsp)
    movq    %rsp, %rdi
    movl    %r11d, %esi
    call    hc_blocking_c
    addq    $792, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size   hc_blocking_entry, .-hc_blocking_entry

/* long hc_blocking_syscall(long nr, long a, b, c, d, e, f): the system call,
 * unless a migration request is pending (hc_blocking_request) or comes
 * while it waits: on_signal finds the interrupted pc in
 * [hc_blocking_begin, hc_blocking_end) — the call not made, or made and to
 * be restarted — or at hc_blocking_end with -EINTR, and sends it to
 * hc_blocking_cancel instead (musl's cancellation points work so). */
    .section .text.hc_blocking_syscall,"ax",@progbits
    .globl  hc_blocking_syscall
    .globl  hc_blocking_begin
    .globl  hc_blocking_end
    .globl  hc_blocking_cancel
    .type   hc_blocking_syscall,@function
    .p2align 4
hc_blocking_syscall:
    movq    %rdi, %rax
    movq    %rsi, %rdi
    movq    %rdx, %rsi
    movq    %rcx, %rdx
    movq    %r8, %r10
    movq    %r9, %r8
    movq    8(%rsp), %r9
hc_blocking_begin:
    cmpl    $0, hc_blocking_request(%rip)
    jne     hc_blocking_cancel
    syscall
hc_blocking_end:
    ret
hc_blocking_cancel:
    movq    $-5000, %rax
    ret
    .size   hc_blocking_syscall, .-hc_blocking_syscall

/* __hc_resume_enter: a call re-issued on a resume path goes here in place
 * of its callee. It uses up the caller's frame record (__hc_resume_take)
 * and jumps to the function whose record is next, with the call's
 * arguments untouched (registers saved around the call; stack arguments
 * and the return address stay where they are). One stub instead of a
 * call to __hc_resume_take in every resume path. */
    .section .text.__hc_resume_enter,"ax",@progbits
    .globl  __hc_resume_enter
    .type   __hc_resume_enter,@function
    .p2align 4
__hc_resume_enter:
    .cfi_startproc
    pushq   %rdi
    .cfi_adjust_cfa_offset 8
    pushq   %rsi
    .cfi_adjust_cfa_offset 8
    pushq   %rdx
    .cfi_adjust_cfa_offset 8
    pushq   %rcx
    .cfi_adjust_cfa_offset 8
    pushq   %r8
    .cfi_adjust_cfa_offset 8
    pushq   %r9
    .cfi_adjust_cfa_offset 8
    pushq   %rax
    .cfi_adjust_cfa_offset 8
    subq    $128, %rsp
    .cfi_adjust_cfa_offset 128
    movups  %xmm0, 0(%rsp)
    movups  %xmm1, 16(%rsp)
    movups  %xmm2, 32(%rsp)
    movups  %xmm3, 48(%rsp)
    movups  %xmm4, 64(%rsp)
    movups  %xmm5, 80(%rsp)
    movups  %xmm6, 96(%rsp)
    movups  %xmm7, 112(%rsp)
    callq   __hc_resume_take
    movq    %rax, %r11
    movups  0(%rsp), %xmm0
    movups  16(%rsp), %xmm1
    movups  32(%rsp), %xmm2
    movups  48(%rsp), %xmm3
    movups  64(%rsp), %xmm4
    movups  80(%rsp), %xmm5
    movups  96(%rsp), %xmm6
    movups  112(%rsp), %xmm7
    addq    $128, %rsp
    .cfi_adjust_cfa_offset -128
    popq    %rax
    .cfi_adjust_cfa_offset -8
    popq    %r9
    .cfi_adjust_cfa_offset -8
    popq    %r8
    .cfi_adjust_cfa_offset -8
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    popq    %rdx
    .cfi_adjust_cfa_offset -8
    popq    %rsi
    .cfi_adjust_cfa_offset -8
    popq    %rdi
    .cfi_adjust_cfa_offset -8
    jmpq    *%r11
    .cfi_endproc
    .size   __hc_resume_enter, .-__hc_resume_enter

/* void hc_switch_stack(void *top, void (*fn)(void *), void *arg): runs
 * fn(arg) on the stack ending at top; fn never returns. */
    .section .text.hc_switch_stack,"ax",@progbits
    .globl  hc_switch_stack
    .type   hc_switch_stack,@function
    .p2align 4
hc_switch_stack:
    movq    %rdi, %rsp
    xorl    %ebp, %ebp
    movq    %rdx, %rdi
    callq   *%rsi
    ud2
    .size   hc_switch_stack, .-hc_switch_stack
    .section .note.GNU-stack,"",@progbits
