//! The program's scanf calls wait for input where they can migrate.
//!
//! scanf and fscanf are variadic, and a statepoint cannot wrap a variadic
//! call: such a call is no site, so a program waiting in one (at an
//! interactive prompt) could not migrate. The program's own calls go to
//! runtime entries instead (runtime/native/hcrt.c, "Blocking calls") that
//! take the pointers as an array in the caller's frame — a call with fixed
//! arguments, so a site — and vscanf and vfscanf go to one that takes their
//! `va_list` as it is. libc's internal calls are untouched (sscanf reaches
//! vfscanf with a FILE of its own).

use crate::ir::{self, Builder, Ctx, Ty, Val};

/// Runtime entry for scanf and fscanf: `(FILE *, format, i64 n, void *ptrs[n])`.
pub const ARRAY_ENTRY: &str = "__hcw_fscanf";
/// Runtime entry for vscanf and vfscanf: `(FILE *, format, va_list)`.
pub const VA_LIST_ENTRY: &str = "__hcw_vfscanf";

/// More pointers than this, which no real format has, stay a plain call.
const MOST_POINTERS: u32 = 64;

/// (libc function, arguments before the format: 0 reads stdin, 1 a FILE,
/// whether it takes a `va_list`).
const CALLS: &[(&str, u32, bool)] = &[
    ("fscanf", 1, false),
    ("scanf", 0, false),
    ("vfscanf", 1, true),
    ("vscanf", 0, true),
];

/// Redirects every call of the module's functions to scanf, fscanf,
/// vscanf and vfscanf (declared, not defined here) whose variable
/// arguments are all pointers.
pub fn redirect(cx: &Ctx) {
    let mut calls = Vec::new();
    for f in cx.functions() {
        if f.is_declaration() {
            continue;
        }
        for b in f.blocks() {
            for i in b.instructions() {
                if !i.is_call() {
                    continue;
                }
                let callee = i.called_operand();
                if !callee.is_function() || !callee.is_declaration() {
                    continue;
                }
                let name = callee.name();
                if let Some(&(_, file_args, va_list)) = CALLS.iter().find(|c| c.0 == name) {
                    calls.push((f, i, file_args, va_list));
                }
            }
        }
    }
    if calls.is_empty() {
        return;
    }
    let ptr = cx.ptr();
    let i32 = cx.i32();
    let array_ty = cx.fn_type(i32, &[ptr, ptr, cx.i64(), ptr], false);
    let va_ty = cx.fn_type(i32, &[ptr, ptr, ptr], false);
    let b = Builder::new(cx);
    for (f, call, file_args, va_list) in calls {
        let fixed = file_args + 1;
        let n = call.num_args();
        if n < fixed || (0..n).any(|k| call.operand(k).ty() != ptr) {
            continue;
        }
        if va_list && n != fixed + 1 {
            continue;
        }
        let pointers = n - fixed;
        if !va_list && pointers > MOST_POINTERS {
            continue;
        }
        b.before(call);
        let file = if file_args == 0 {
            let stdin = cx.declare_global("stdin", ptr, false);
            b.load(ptr, stdin, "stdin")
        } else {
            call.operand(0)
        };
        let format = call.operand(file_args);
        let new = if va_list {
            let entry = cx.declare(VA_LIST_ENTRY, va_ty);
            b.call(va_ty, entry, &[file, format, call.operand(fixed)], "")
        } else {
            let array = pointer_array(cx, &b, f, call, fixed, pointers);
            let count = cx.const_int(cx.i64(), u64::from(pointers));
            let entry = cx.declare(ARRAY_ENTRY, array_ty);
            b.call(array_ty, entry, &[file, format, count, array], "")
        };
        new.copy_debug_loc(call);
        call.replace_all_uses_with(new);
        call.erase();
    }
}

/// The call's pointer arguments from `first` on, stored in an array in the
/// caller's frame (a static alloca at its entry).
fn pointer_array(cx: &Ctx, b: &Builder, f: Val, call: Val, first: u32, count: u32) -> Val {
    let ptr = cx.ptr();
    let array_ty: Ty = ir::array_type(ptr, u64::from(count.max(1)));
    let at = Builder::new(cx);
    at.at_start(f.entry());
    let array = at.alloca(array_ty, "scanf.ptrs");
    for k in 0..count {
        let offset = cx.const_int(cx.i64(), u64::from(k) * 8);
        let slot = b.gep_i8(cx, array, offset, "");
        b.store(call.operand(first + k), slot);
    }
    array
}
