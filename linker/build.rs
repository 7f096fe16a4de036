//! Compiles the in-process runtime (runtime/native: C + asm) for every ISA
//! with clang-22, so hld can embed the objects and link them into every
//! program. The runtime is never instrumented.

use std::path::PathBuf;
use std::process::Command;

const ISAS: [&str; 2] = ["x86_64", "aarch64"];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let native =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../runtime/native");
    for f in ["hcrt.c", "hcrt.h", "x86_64.S", "aarch64.S"] {
        println!("cargo:rerun-if-changed={}", native.join(f).display());
    }
    for isa in ISAS {
        let common = |cmd: &mut Command| {
            cmd.arg(format!("--target={isa}-linux-musl"))
                .args([
                    "-nostdinc",
                    "-isystem",
                    "/usr/lib/llvm-22/lib/clang/22/include",
                ])
                .arg("-isystem")
                .arg(format!("/usr/include/{isa}-linux-musl"));
        };
        let mut c = Command::new("clang-22");
        common(&mut c);
        // -Os: the runtime is linked into every program and runs rarely
        // (dump and restore are system calls; its per-call wrappers are a
        // few instructions either way): 47.5 KB of x86_64 code at -O2,
        // 33.0 KB at -Os.
        c.args([
            "-Os",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-ffunction-sections",
            "-fdata-sections",
            "-fno-stack-protector",
            "-fno-pic",
            "-fno-omit-frame-pointer",
            "-c",
        ])
        .arg(native.join("hcrt.c"))
        .arg("-o")
        .arg(out.join(format!("hcrt-{isa}.o")));
        run(&mut c);
        let mut s = Command::new("clang-22");
        common(&mut s);
        s.arg("-c")
            .arg(native.join(format!("{isa}.S")))
            .arg("-o")
            .arg(out.join(format!("hcstub-{isa}.o")));
        run(&mut s);
    }
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run clang-22 ({e}): install the toolchain with scripts/setup.sh")
    });
    assert!(status.success(), "building the runtime failed: {cmd:?}");
}
