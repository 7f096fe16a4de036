//! libc calls whose structs hcc lays out one way on every ISA.
//!
//! hcc's own headers give `struct stat` x86_64's layout on every ISA
//! (hcc/include/bits/stat.h), so a struct stat anywhere in memory migrates as
//! it is. musl still fills the kernel's layout, so the program's calls go to
//! runtime wrappers that convert (runtime/native/hcrt.c). Only the program's
//! own calls are redirected: libc's internal ones keep musl's layout.

use crate::ir::Ctx;

/// (libc function, runtime wrapper); the `*64` names are musl's LFS aliases.
const REDIRECTS: &[(&str, &str)] = &[
    ("fstat", "__hc_fstat"),
    ("fstat64", "__hc_fstat"),
    ("fstatat", "__hc_fstatat"),
    ("fstatat64", "__hc_fstatat"),
    ("lstat", "__hc_lstat"),
    ("lstat64", "__hc_lstat"),
    ("stat", "__hc_stat"),
    ("stat64", "__hc_stat"),
];

/// The wrapper a call to `name` is redirected to, if any.
pub fn wrapper(name: &str) -> Option<&'static str> {
    REDIRECTS.iter().find(|(f, _)| *f == name).map(|(_, w)| *w)
}

/// Points the module's declarations of the redirected functions at their
/// wrappers. A program that defines a function of such a name keeps it.
pub fn redirect(cx: &Ctx) {
    for (from, to) in REDIRECTS {
        let Some(f) = cx.function(from) else { continue };
        if !f.is_declaration() {
            continue;
        }
        match cx.function(to) {
            // stat and stat64 both declared: one wrapper declaration serves both.
            Some(w) => {
                f.replace_all_uses_with(w);
                f.delete_function();
            }
            None => f.set_name(to),
        }
    }
}
