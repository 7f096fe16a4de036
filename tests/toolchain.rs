//! hcc behaves like a C compiler driver: gcc flags, multi-file programs,
//! archives, clear errors; its objects are ordinary ELF objects to other tools.

use hc_metadata::{meta, Isa};
use hc_tests::*;
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::Path;
use std::process::Command;

fn hcc(args: &[&str], cwd: &Path) -> Run {
    Command::new(tool("hcc"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
        .into()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const MAIN_C: &str = r#"
#include <stdio.h>
#include "util.h"
int main(int argc, char **argv) {
    long t = 0;
    for (int i = 0; i < 2000; i++) t += scale(i) + OFFSET;
    printf("%s %ld %d\n", GREETING, t, argc);
    return (int)(t % 7);
}
"#;
const UTIL_H: &str = "long scale(int);\n#define OFFSET 3\n";
const UTIL_C: &str = "#include \"util.h\"\nstatic long factor = 5;\nlong scale(int x) { long r = 0; for (int i = 0; i <= x % 9; i++) r += factor * i; return r; }\n";

fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("inc")).unwrap();
    write(&d.path().join("inc"), "util.h", UTIL_H);
    write(d.path(), "main.c", MAIN_C);
    write(d.path(), "util.c", UTIL_C);
    d
}

#[test]
fn separate_compilation_and_link() {
    let d = project();
    let p = d.path();
    assert_eq!(
        hcc(&["-c", "-O2", "-Iinc", "-DGREETING=\"hi\"", "main.c"], p).code,
        Some(0)
    );
    assert_eq!(
        hcc(&["-c", "-O2", "-I", "inc", "util.c", "-o", "u.o"], p).code,
        Some(0)
    );
    let link = hcc(&["main.o", "u.o", "-o", "app"], p);
    assert_eq!(link.code, Some(0), "{}", link.stderr);
    let r = native(&p.join("app"), &["x"], p);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "hi 139205 2\n");
    assert_eq!(r.code, Some(139205 % 7));
    // nm reads hcc objects like any object.
    let nm = Command::new("nm").arg(p.join("main.o")).output().unwrap();
    assert!(String::from_utf8_lossy(&nm.stdout).contains("T main"));
    // Both ISAs agree, and the program migrates.
    let a = hcontainer(&["run", "--isa", "aarch64", "./app", "x"], p);
    assert_same(&r, &a, "app on aarch64");
    let m = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--at-point",
            "700",
            "./app",
            "x",
        ],
        p,
    );
    assert_same(&r, &m, "app migrating");
    assert_eq!(m.migrations().len(), 2, "{}", m.stderr);
}

#[test]
fn compile_and_link_in_one_call_and_archives() {
    let d = project();
    let p = d.path();
    let one = hcc(
        &[
            "-O1",
            "-Iinc",
            "-DGREETING=\"one\"",
            "main.c",
            "util.c",
            "-o",
            "one",
        ],
        p,
    );
    assert_eq!(one.code, Some(0), "{}", one.stderr);
    assert_eq!(native(&p.join("one"), &[], p).stdout, b"one 139205 1\n");
    // A static archive of hcc objects, found with -L/-l.
    assert_eq!(hcc(&["-c", "-Iinc", "util.c"], p).code, Some(0));
    let ar = Command::new("ar")
        .args(["rcs", "libutil.a", "util.o"])
        .current_dir(p)
        .status()
        .unwrap();
    assert!(ar.success());
    let l = hcc(
        &[
            "-Iinc",
            "-DGREETING=\"lib\"",
            "main.c",
            "-L.",
            "-lutil",
            "-lm",
            "-o",
            "withlib",
        ],
        p,
    );
    assert_eq!(l.code, Some(0), "{}", l.stderr);
    assert_eq!(native(&p.join("withlib"), &[], p).stdout, b"lib 139205 1\n");
    let v = hcontainer(&["verify", "withlib"], p);
    assert_eq!(v.code, Some(0), "{}", v.stderr);
    // GNU ld's -l:FILE names the archive's file (mujs's Makefile), and a
    // missing one is named as given.
    let exact = hcc(
        &[
            "-Iinc",
            "-DGREETING=\"exact\"",
            "main.c",
            "-L.",
            "-l:libutil.a",
            "-o",
            "exact",
        ],
        p,
    );
    assert_eq!(exact.code, Some(0), "{}", exact.stderr);
    assert_eq!(native(&p.join("exact"), &[], p).stdout, b"exact 139205 1\n");
    let missing = hcc(
        &[
            "-Iinc",
            "-DGREETING=\"x\"",
            "main.c",
            "-L.",
            "-l:libnone.a",
            "-o",
            "x",
        ],
        p,
    );
    assert_ne!(missing.code, Some(0));
    assert!(
        missing.stderr.contains("cannot find -l:libnone.a"),
        "{}",
        missing.stderr
    );
}

/// A call that returns a `long double` and may reach a migration point (in
/// another translation unit, as a user's library would be).
const MEAN_C: &str = r#"
#include <stdlib.h>
long double mean(const char **v, int n) {
    long double s = 0;
    for (int i = 0; i < n; i++) s += strtold(v[i], 0);
    return s / n;
}
"#;
const REPORT_C: &str = r#"
#include <stdio.h>
long double mean(const char **v, int n);
int main(int argc, const char **argv) {
    printf("%.3f\n", (double)mean(argv + 1, argc - 1));
    return 0;
}
"#;

#[test]
fn calls_returning_long_double_run_and_are_reported() {
    // Such a call was a statepoint, and LLVM's x86_64 back end follows one
    // with an x87 result by `call 0`: the program crashed natively.
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "mean.c", MEAN_C);
    write(p, "report.c", REPORT_C);
    let b = hcc(&["-O2", "mean.c", "report.c", "-o", "report"], p);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let args = ["1", "2", "3.5"];
    let r = native(&p.join("report"), &args, p);
    assert_eq!(
        (r.code, r.stdout_str().as_str()),
        (Some(0), "2.167\n"),
        "{}",
        r.stderr
    );
    let a = hcontainer(&["run", "--isa", "aarch64", "./report", "1", "2", "3.5"], p);
    assert_same(&r, &a, "report on aarch64");
    let s = hcontainer(&["sites", "report"], p);
    assert!(
        s.stdout_str().contains("long-double-result (1 sites)")
            && s.stdout_str().contains("calls returning a long double"),
        "{}",
        s.stdout_str()
    );
}

const VARIADIC_LIB_C: &str = r#"
#include <stdarg.h>
struct pair { long a, b; };
long sum(int n, ...) { va_list ap; va_start(ap, n); long s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, long); va_end(ap); return s; }
long pairs(int n, ...) { va_list ap; va_start(ap, n); long s = 0; for (int i = 0; i < n; i++) { struct pair p = va_arg(ap, struct pair); s += p.a * p.b; } va_end(ap); return s; }
double wide(int n, ...) { va_list ap; va_start(ap, n); long double s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, long double); va_end(ap); return (double)s; }
"#;
const VARIADIC_MAIN_C: &str = r#"
#include <stdarg.h>
#include <stdio.h>
struct pair { long a, b; };
long sum(int n, ...); long pairs(int n, ...); double wide(int n, ...);
static inline __attribute__((always_inline)) int first(int n, ...) { va_list ap; va_start(ap, n); int r = va_arg(ap, int); va_end(ap); return r + n; }
static long local(int n, ...) { va_list ap; va_start(ap, n); long s = 0; while (n--) s = s * 10 + va_arg(ap, int); va_end(ap); return s; }
/* Passed 0 for a pointer, as sqlite3's shell does: natively that reads NULL. */
static int is_null(int n, ...) { va_list ap; va_start(ap, n); int *p = va_arg(ap, int *); va_end(ap); return p == 0; }
int main(void) {
    long (*fp)(int, ...) = local;
    struct pair p = {3, 4}, q = {5, 6};
    printf("%ld %ld %ld %ld %.1f %d %d\n", sum(3, 1L, 2L, 3L), local(3, 1, 2, 3), fp(2, 4, 5),
           pairs(2, p, q), wide(2, 1.5L, 2.25L), first(1, 41), is_null(1, 0));
    return 0;
}
"#;

#[test]
fn variadic_functions_run_however_they_are_called() {
    // Direct calls in the file go to the body with an argument area; calls
    // through a pointer, from another file, with struct or long double
    // arguments enter the variadic entry shim; always_inline still builds.
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "lib.c", VARIADIC_LIB_C);
    write(p, "main.c", VARIADIC_MAIN_C);
    for level in ["-O0", "-O2"] {
        let b = hcc(&[level, "main.c", "lib.c", "-o", "v"], p);
        assert_eq!(b.code, Some(0), "{level}: {}", b.stderr);
        let r = native(&p.join("v"), &[], p);
        assert_eq!(
            (r.code, r.stdout_str().as_str()),
            (Some(0), "6 123 45 42 3.8 42 1\n"),
            "{level}: {}",
            r.stderr
        );
        let a = hcontainer(&["run", "--isa", "aarch64", "./v"], p);
        assert_same(&r, &a, &format!("{level} on aarch64"));
    }
}

#[test]
fn kernel_headers_are_found_and_each_isa_gets_its_own() {
    // gcc finds <linux/...> and <asm/...> in /usr/include; so does hcc,
    // with each variant compiled against its own ISA's <asm/unistd.h>
    // (getpid is system call 39 on x86_64, 172 on aarch64).
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "k.c",
        "#include <asm/unistd.h>\n#include <linux/filter.h>\n#include <stdio.h>\n#include <sys/syscall.h>\n\
         #include <unistd.h>\nint main(void) {\n    struct sock_filter f = BPF_STMT(BPF_RET | BPF_K, 7);\n\
         printf(\"%d %d\\n\", syscall(__NR_getpid) == getpid(), (int)f.k);\n    return 0;\n}\n",
    );
    let b = hcc(&["-O2", "k.c", "-o", "k"], p);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let r = native(&p.join("k"), &[], p);
    assert_eq!(r.stdout_str(), "1 7\n", "{}", r.stderr);
    let a = hcontainer(&["run", "--isa", "aarch64", "./k"], p);
    assert_same(&r, &a, "on aarch64");
}

#[test]
fn unoptimized_and_debug_builds_migrate() {
    let d = project();
    let p = d.path();
    for flags in [&["-O0", "-g"][..], &["-Os"][..], &["-O3"][..]] {
        let mut args = flags.to_vec();
        args.extend(["-Iinc", "-DGREETING=\"o\"", "main.c", "util.c", "-o", "opt"]);
        let b = hcc(&args, p);
        assert_eq!(b.code, Some(0), "{flags:?}: {}", b.stderr);
        let r = native(&p.join("opt"), &[], p);
        let m = hcontainer(
            &[
                "run",
                "--migrate",
                "x86_64,aarch64,x86_64,aarch64",
                "--at-point",
                "333",
                "./opt",
            ],
            p,
        );
        assert_same(&r, &m, &format!("{flags:?}"));
        assert_eq!(m.migrations().len(), 3, "{flags:?}: {}", m.stderr);
    }
}

/// `hc-bench parts` builds with parts of the instrumentation off
/// (`HCC_BENCH_ABLATE`); such builds, with debug information too, still
/// compile and compute what the whole build does. (Without loop polls, a
/// spare outer loop's poll left the debug records before its branch
/// trailing: nbody.c failed IR verification.)
#[test]
fn builds_without_a_part_of_the_instrumentation_compile_with_debug_information() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let src = examples().join("nbody.c");
    let build = |ablate: &str, out: &str| {
        let r: Run = Command::new(tool("hcc"))
            .env("HCC_BENCH_ABLATE", ablate)
            .args(["-O2", "-g", "-o", out])
            .arg(&src)
            .arg("-lm")
            .current_dir(p)
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, Some(0), "HCC_BENCH_ABLATE={ablate}: {}", r.stderr);
        native(&p.join(out), &["2000"], p)
    };
    let whole = build("", "whole");
    for ablate in ["loop-polls", "entry-polls", "loop-polls,entry-polls"] {
        let part = build(ablate, "part");
        assert_same(&whole, &part, &format!("HCC_BENCH_ABLATE={ablate}"));
    }
}

/// `-Wl,--gc-sections` drops what nothing reaches — in every variant alike,
/// resume copies and poll entries with their functions — and what is kept
/// still migrates.
#[test]
fn gc_sections_drops_dead_functions_and_keeps_migration() {
    let d = project();
    let p = d.path();
    // All unreached: one whose loop calls (it gets a resume copy), one
    // whose loop only polls, one without loops calling another file (a
    // redirected entry, whose listing refers to its copy).
    write(
        p,
        "dead.c",
        "#include \"util.h\"\nlong unreached_caller(int n) { long s = 0; for (int i = 0; i < n; i++) s ^= scale(i); return s; }\n\
         long unreached_loop(int n) { long s = 0; for (int i = 0; i < n; i++) s += (long)i * i; return s; }\n\
         long unreached_chain(int n) { return scale(n) * scale(n + 1); }\n",
    );
    let sources = ["-Iinc", "-DGREETING=\"gc\"", "main.c", "util.c", "dead.c"];
    let plain = hcc(&[&["-O2"][..], &sources, &["-o", "all"]].concat(), p);
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    let gc = hcc(
        &[
            &["-O2", "-ffunction-sections", "-fdata-sections"][..],
            &sources,
            &["-Wl,--gc-sections", "-o", "gc"],
        ]
        .concat(),
        p,
    );
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
    let symbols = |exe: &str| -> Vec<String> {
        let data = std::fs::read(p.join(exe)).unwrap();
        let file = object::File::parse(&*data).unwrap();
        file.symbols()
            .filter_map(|s| s.name().ok().map(str::to_string))
            .collect()
    };
    let (all, kept) = (symbols("all"), symbols("gc"));
    for f in [
        "unreached_caller",
        "unreached_caller.hc.resume",
        "unreached_loop",
        "unreached_chain",
        "unreached_chain.hc.resume",
    ] {
        assert!(all.iter().any(|s| s == f), "{f} missing without gc");
        assert!(!kept.iter().any(|s| s == f), "{f} kept by --gc-sections");
    }
    assert!(kept.iter().any(|s| s == "main.hc.resume"));
    let verify = hcontainer(&["verify", "./gc"], p);
    assert_ok(&verify, "verify");
    let r = native(&p.join("all"), &[], p);
    let m = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--at-point",
            "500",
            "./gc",
        ],
        p,
    );
    assert_same(&r, &m, "--gc-sections");
    assert_eq!(m.migrations().len(), 2, "{}", m.stderr);
}

#[test]
fn hcontainer_strip_removes_debug_information_from_every_variant() {
    let d = project();
    let p = d.path();
    let b = hcc(
        &[
            "-O2",
            "-g",
            "-Iinc",
            "-DGREETING=\"s\"",
            "main.c",
            "util.c",
            "-o",
            "dbg",
        ],
        p,
    );
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let debug_sections = |exe: &[u8]| -> Vec<String> {
        let f = object::File::parse(exe).unwrap();
        f.sections()
            .filter_map(|s| s.name().ok().map(str::to_string))
            .filter(|n| n.starts_with(".debug"))
            .collect()
    };
    let variant = |file: &Path| -> Vec<u8> {
        let data = std::fs::read(file).unwrap();
        let f = object::File::parse(data.as_slice()).unwrap();
        let packed = f
            .section_by_name(&meta::variant_section(Isa::Aarch64))
            .unwrap()
            .data()
            .unwrap()
            .to_vec();
        meta::unpack_variant(&packed).unwrap()
    };
    assert!(!debug_sections(&variant(&p.join("dbg"))).is_empty());
    let s = hcontainer(&["strip", "dbg", "-o", "stripped"], p);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let stripped = std::fs::read(p.join("stripped")).unwrap();
    assert!(stripped.len() < std::fs::metadata(p.join("dbg")).unwrap().len() as usize);
    assert_eq!(debug_sections(&stripped), Vec::<String>::new());
    assert_eq!(
        debug_sections(&variant(&p.join("stripped"))),
        Vec::<String>::new()
    );
    let v = hcontainer(&["verify", "stripped"], p);
    assert_eq!(v.code, Some(0), "{}", v.stderr);
    // It runs and migrates as before; in place (no -o) works too.
    let want = native(&p.join("dbg"), &[], p);
    let got = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--at-point",
            "333",
            "./stripped",
        ],
        p,
    );
    assert_same(&want, &got, "stripped, migrated");
    assert_eq!(got.migrations().len(), 2, "{}", got.stderr);
    let s = hcontainer(&["strip", "dbg"], p);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert_eq!(
        debug_sections(&variant(&p.join("dbg"))),
        Vec::<String>::new()
    );
    assert_same(&want, &native(&p.join("dbg"), &[], p), "stripped in place");
    // The link strips too, when asked as gcc (-s) or ld (-Wl,-s, mujs's
    // release build; -Wl,--strip-debug) is: lld's own stripping took the
    // symbols hld reads ("__hc_build_id missing"), so hld does it.
    for (flag, name) in [("-s", "s1"), ("-Wl,-s", "s2"), ("-Wl,--strip-debug", "s3")] {
        let b = hcc(
            &[
                "-O2",
                "-g",
                "-Iinc",
                "-DGREETING=\"s\"",
                "main.c",
                "util.c",
                flag,
                "-o",
                name,
            ],
            p,
        );
        assert_eq!(b.code, Some(0), "{flag}: {}", b.stderr);
        let exe = std::fs::read(p.join(name)).unwrap();
        assert_eq!(debug_sections(&exe), Vec::<String>::new(), "{flag}");
        assert_eq!(
            debug_sections(&variant(&p.join(name))),
            Vec::<String>::new(),
            "{flag}"
        );
        assert_ok(&hcontainer(&["verify", name], p), flag);
        assert_same(&want, &native(&p.join(name), &[], p), flag);
    }
}

#[test]
fn clear_errors() {
    let d = project();
    let p = d.path();
    let r = hcc(&["--frobnicate", "main.c"], p);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("unknown argument '--frobnicate'"),
        "{}",
        r.stderr
    );
    let r = hcc(&["-march=native", "-c", "util.c", "-Iinc"], p);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("'-march=native' is ISA-specific"),
        "{}",
        r.stderr
    );
    let r = hcc(&["-static-pie", "main.c", "util.c", "-Iinc"], p);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("'-static-pie'") && r.stderr.contains("use -static"),
        "{}",
        r.stderr
    );
    write(p, "x.S", "nop\n");
    let r = hcc(&["-c", "x.S"], p);
    assert!(
        r.stderr.contains("assembly input is not supported"),
        "{}",
        r.stderr
    );
    let r = hcc(&["-shared", "util.c"], p);
    assert!(
        r.stderr.contains("shared libraries cannot be migrated")
            && r.stderr.contains("--disable-shared"),
        "{}",
        r.stderr
    );
    // Compile errors come once, with file and line, and fail the build.
    write(p, "bad.c", "int f(void) {\n  return undefined_name;\n}\n");
    let r = hcc(&["-c", "bad.c"], p);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stderr.matches("bad.c:2:").count(), 1, "{}", r.stderr);
    // A plain object cannot join a migratable program.
    let cc = Command::new("clang-22")
        .args(["-c", "-Iinc", "util.c", "-o", "plain.o"])
        .current_dir(p)
        .status()
        .unwrap();
    assert!(cc.success());
    let r = hcc(
        &[
            "-Iinc",
            "-DGREETING=\"x\"",
            "main.c",
            "plain.o",
            "-o",
            "mixed",
        ],
        p,
    );
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("plain.o: not built by hcc"),
        "{}",
        r.stderr
    );
    let r = hcc(&["main.c", "-lnosuchlib", "-Iinc", "-DGREETING=\"x\""], p);
    assert!(r.stderr.contains("cannot find -lnosuchlib"), "{}", r.stderr);
}

#[test]
fn queries_and_dependency_files() {
    let d = project();
    let p = d.path();
    let v = hcc(&["--version"], p);
    assert!(String::from_utf8_lossy(&v.stdout).contains("hcc (hcontainer)"));
    assert_eq!(
        String::from_utf8_lossy(&hcc(&["-dumpmachine"], p).stdout).trim(),
        "x86_64-linux-musl"
    );
    let r = hcc(&["-c", "-MD", "-Iinc", "util.c"], p);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let dep = std::fs::read_to_string(p.join("util.d")).unwrap();
    assert!(
        dep.starts_with("util.o:") && dep.contains("inc/util.h"),
        "{dep}"
    );
    let e = hcc(&["-E", "-DGREETING=1", "-Iinc", "main.c"], p);
    assert!(String::from_utf8_lossy(&e.stdout).contains("long scale(int);"));
}

/// gcc's `-x c` holds for every input after it, whatever its name: dash's
/// build makes `builtins.def` with `$(CC) -E -x c -o builtins.def
/// builtins.def.in`, which clang took for a linker input (an empty output,
/// and the build failed on the identifiers it should have defined).
#[test]
fn dash_x_c_makes_any_file_a_c_source() {
    let d = project();
    let p = d.path();
    write(
        p,
        "table.def.in",
        "#define ENTRY(n) entry_##n\nENTRY(exec)\n",
    );
    let r = hcc(&["-E", "-x", "c", "-o", "table.def", "table.def.in"], p);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let def = std::fs::read_to_string(p.join("table.def")).unwrap();
    assert!(def.contains("entry_exec"), "{def}");
    write(p, "prog.txt", "int main(void) { return 42; }\n");
    let r = hcc(&["-x", "c", "-c", "prog.txt"], p);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // `-x none` gives names their meaning back: the object links as one.
    let r = hcc(&["-x", "c", "-x", "none", "prog.o", "-o", "prog"], p);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let status = Command::new(p.join("prog")).status().unwrap();
    assert_eq!(status.code(), Some(42));
}

#[test]
fn functions_the_isas_compile_differently_are_reported_with_the_lines_that_differ() {
    // Source that is another program on each ISA cannot agree: hcc names
    // the function, the file and why (-Whc-mismatch, on by default), and
    // points at the lines that preprocess differently, which the user can
    // make one (here with -DONE_LOOP). The program runs either way.
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "isa.c",
        r#"#include <stdio.h>
static unsigned long total;
__attribute__((noinline)) void f(unsigned long x) {
    do x = x * 6364136223846793005ul + 1; while ((x & 0xff) != 0x5a);
    total += x >> 60;
}
__attribute__((noinline)) void g(unsigned long x) { f(x ^ 0x9e3779b97f4a7c15ul); }
void work(int n) {
#if defined(__x86_64__) && !defined(ONE_LOOP)
    for (int i = 0; i < n; i++) { f(i); g(i); }
#else
    for (int i = 0; i < n; i++) { g(i); f(i); }
#endif
}
int main(void) {
    work(1000);
    printf("%lu\n", total);
    return 0;
}
"#,
    );
    let r = hcc(&["-O2", "-o", "isa", "isa.c"], d.path());
    assert_ok(&r, "hcc isa.c");
    assert!(
        r.stderr
            .contains("isa.c: warning: function 'work' is not migratable: ")
            && r.stderr.contains("[-Whc-mismatch]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("isa.c: note: the source is not the same on every ISA: lines 10, 12 preprocess differently"),
        "{}",
        r.stderr
    );
    let app = d.path().join("isa");
    let x86 = native(&app, &[], d.path());
    assert_eq!(x86.stdout_str(), "15104\n");
    let arm = hcontainer(
        &["run", "--isa", "aarch64", app.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(arm.stdout_str(), "15104\n", "{}", arm.stderr);
    // Silenced like any warning, and nothing of it reaches clang.
    let quiet = hcc(&["-O2", "-Wno-hc-mismatch", "-o", "isa", "isa.c"], d.path());
    assert_ok(&quiet, "hcc -Wno-hc-mismatch");
    assert_eq!(quiet.stderr, "");
    // One branch for every ISA: nothing to report.
    let one = hcc(&["-O2", "-DONE_LOOP", "-o", "isa", "isa.c"], d.path());
    assert_ok(&one, "hcc -DONE_LOOP");
    assert_eq!(one.stderr, "");
    sites_at_least(&app, 100.0);
    // The difference in a header of the program's own (xz's memcmplen.h):
    // the note names the header's lines (system headers, which differ per
    // ISA by nature, are not reported).
    write(
        d.path(),
        "order.h",
        "static inline void both(int i) {\n#if defined(__x86_64__) && !defined(ONE_LOOP)\n    f(i); g(i);\n#else\n    g(i); f(i);\n#endif\n}\n",
    );
    let src = std::fs::read_to_string(d.path().join("isa.c")).unwrap();
    let start = src.find("void work").unwrap();
    let end = src.find("int main").unwrap();
    let hdr = format!(
        "{}#include \"order.h\"\nvoid work(int n) {{ for (int i = 0; i < n; i++) both(i); }}\n{}",
        &src[..start],
        &src[end..]
    );
    write(d.path(), "hdr.c", &hdr);
    let r = hcc(&["-O2", "-o", "hdr", "hdr.c"], d.path());
    assert_ok(&r, "hcc hdr.c");
    assert!(
        r.stderr.contains(
            "hdr.c: note: the source is not the same on every ISA: lines 3, 5 of order.h preprocess differently"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_cpu_macro_the_program_defines_is_named_when_a_variant_fails() {
    // GNU m4's configure (gnulib's host CPU check) settles on "i386" under
    // hcc and writes `#define __i386__ 1` into config.h, which every variant
    // then sees: the aarch64 variant got x87 control-word asm and failed.
    // hcc names the definition and the configure setting that avoids it.
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "config.h",
        "/* CPU and C ABI indicator */\n#ifndef __i386__\n#define __i386__ 1\n#endif\n",
    );
    let fpu = r#"#include "config.h"
#include <stdio.h>
int main(void) {
    unsigned short cw = 0;
#if defined __i386__ || defined __x86_64__
    __asm__ __volatile__ ("fnstcw %0" : "=m" (cw));
#endif
    printf("%d\n", cw != 0);
    return 0;
}
"#;
    write(d.path(), "fpu.c", fpu);
    let r = hcc(&["-O2", "-c", "fpu.c"], d.path());
    assert_ne!(r.code, Some(0), "hcc fpu.c should fail: {}", r.stderr);
    assert!(r.stderr.contains("fpu.c: aarch64: "), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "config.h:3: note: the program defines __i386__, a CPU's macro, in every variant (aarch64 included)"
        ) && r.stderr.contains("gl_cv_host_cpu_c_abi=no"),
        "{}",
        r.stderr
    );
    // The same in the front end: an #error only one variant reaches.
    write(
        d.path(),
        "probe.c",
        "#include \"config.h\"\n#if defined __aarch64__ && defined __i386__\n#error two CPUs\n#endif\nint x;\n",
    );
    let r = hcc(&["-c", "probe.c"], d.path());
    assert_ne!(r.code, Some(0), "hcc probe.c should fail: {}", r.stderr);
    assert!(
        r.stderr
            .contains("errors above are from the aarch64 variant")
            && r.stderr
                .contains("config.h:3: note: the program defines __i386__"),
        "{}",
        r.stderr
    );
    // Without the definition both variants build, and nothing is said.
    write(d.path(), "config.h", "/* nothing */\n");
    let r = hcc(&["-O2", "-c", "fpu.c"], d.path());
    assert_ok(&r, "hcc fpu.c without the definition");
    assert!(!r.stderr.contains("note:"), "{}", r.stderr);
}

#[test]
fn functions_the_optimizer_specializes_are_built_for_their_own_isa() {
    // LLVM's function specialization clones `show` for the constant
    // `fprintf` it is passed (gawk's debug.c: print_instruction). The clone
    // copied the x86_64 CPU and features hcc's optimizer runs under, and
    // the aarch64 back end warned about them ("'x86-64' is not a
    // recognized processor for this target") and ignored them.
    let d = tempfile::tempdir().unwrap();
    let cases: String = (0..80)
        .map(|i| {
            format!(
                "        case {i}: print(fp, \"op{i} %d %s\\n\", v * {}, names[(v + {i}) % 4]); if (v > {}) print(fp, \"  big{i}\\n\"); break;\n",
                i + 3,
                i * 7
            )
        })
        .collect();
    let src = format!(
        r#"#include <stdio.h>
typedef int (*print_fn)(FILE *, const char *, ...);
static const char *names[] = {{"a", "b", "c", "d"}};
static int quiet(FILE *fp, const char *fmt, ...) {{ (void)fp; (void)fmt; return 0; }}
static __attribute__((noinline)) void show(int op, int v, print_fn print, FILE *fp) {{
    switch (op) {{
{cases}    default: print(fp, "?\n");
    }}
}}
int main(int argc, char **argv) {{
    (void)argv;
    for (int i = 0; i < 200; i++) {{
        show(i % 81, i + argc, fprintf, stdout);
        show(i % 81, i, quiet, stdout);
    }}
    return 0;
}}
"#
    );
    write(d.path(), "spec.c", &src);
    let r = hcc(&["-O2", "-o", "spec", "spec.c"], d.path());
    assert_ok(&r, "hcc spec.c");
    assert_eq!(r.stderr, "", "hcc said more than nothing");
    let plain = d.path().join("spec-plain");
    plain_build(&d.path().join("spec.c"), &plain);
    let want = native(&plain, &[], d.path());
    assert!(
        want.stdout_str().lines().count() > 200,
        "{}",
        want.stdout_str()
    );
    let app = d.path().join("spec");
    for isa in ["x86_64", "aarch64"] {
        let got = hcontainer(&["run", "--isa", isa, app.to_str().unwrap()], d.path());
        assert_same(&want, &got, isa);
    }
}

/// A guaranteed tail call (`musttail`) passing a struct by value stays
/// one: such a function keeps its parameters as they are (passing the
/// address of a copy in the caller's frame, as other functions of a file
/// take structs, cannot be a tail call). A million calls deep, the small
/// struct's program ran out of stack when it was not one; the large
/// struct's (byval on x86_64) computed garbage at -O2 and did not compile
/// at -O0.
#[test]
fn guaranteed_tail_calls_passing_structs_stay_tail_calls() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "walk.c",
        r#"#include <stdio.h>
typedef struct { long a; unsigned b; } pair;
static long walk(pair p, long n) {
    if (n == 0) return p.a + p.b;
    pair q = {p.a * 3 + 1, p.b ^ (unsigned)n};
    __attribute__((musttail)) return walk(q, n - 1);
}
int main(int argc, char **argv) {
    pair p = {argc, 7};
    printf("%ld\n", walk(p, 1000000));
    return 0;
}
"#,
    );
    let small = std::fs::read_to_string(p.join("walk.c")).unwrap();
    let big = small
        .replace("long a; unsigned b;", "long a, c, e; unsigned b;")
        .replace("p.a * 3 + 1, p.b", "p.a * 3 + 1, p.c + p.a, p.e ^ n, p.b")
        .replace("{argc, 7}", "{argc, 9, 11, 7}")
        .replace("p.a + p.b", "p.a + p.b + p.c + p.e");
    write(p, "walk-big.c", &big);
    // The uninterrupted result, from plain clang.
    plain_build(&p.join("walk-big.c"), &p.join("walk-big-plain"));
    let want = native(&p.join("walk-big-plain"), &[], p);
    for (src, expected) in [("walk.c", None), ("walk-big.c", Some(&want))] {
        for level in ["-O0", "-O2"] {
            let what = format!("{src} {level}");
            let b = hcc(&[level, src, "-o", "walk"], p);
            assert_eq!(b.code, Some(0), "{what}: {}", b.stderr);
            let x86 = native(&p.join("walk"), &[], p);
            assert_eq!(x86.code, Some(0), "{what}: {}", x86.stderr);
            if let Some(want) = expected {
                assert_same(want, &x86, &what);
            }
            let arm = hcontainer(&["run", "--isa", "aarch64", "./walk"], p);
            assert_same(&x86, &arm, &format!("{what} on aarch64"));
        }
    }
}

#[test]
fn an_archive_member_pulled_in_by_dash_u_runs_its_constructor() {
    // `-u SYM` makes the link take the archive member defining SYM though
    // nothing calls it; its constructor then runs before main (hld did not
    // know -u, and constructors went into `.ctors`, which it refused).
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "plugin.c",
        "#include <stdio.h>\n#include <stdlib.h>\n\
         int plugin_marker;\n\
         __attribute__((constructor)) static void announce(void) {\n\
             printf(\"plugin loaded%s\\n\", getenv(\"HC_UNSET_VAR\") ? \"?\" : \"\");\n}\n",
    );
    write(
        p,
        "main.c",
        "#include <stdio.h>\nint main(void) { puts(\"main\"); return 0; }\n",
    );
    assert_ok(&hcc(&["-O2", "-c", "plugin.c"], p), "plugin.c");
    let ar = Command::new("ar")
        .args(["rcs", "libplugin.a", "plugin.o"])
        .current_dir(p)
        .status()
        .unwrap();
    assert!(ar.success());
    assert_ok(
        &hcc(&["main.c", "-L.", "-lplugin", "-o", "without"], p),
        "link",
    );
    assert_eq!(native(&p.join("without"), &[], p).stdout, b"main\n");
    assert_ok(
        &hcc(
            &[
                "main.c",
                "-u",
                "plugin_marker",
                "-L.",
                "-lplugin",
                "-o",
                "with",
            ],
            p,
        ),
        "link with -u",
    );
    let want = b"plugin loaded\nmain\n";
    assert_eq!(native(&p.join("with"), &[], p).stdout, want);
    let arm = hcontainer(&["run", "--isa", "aarch64", "./with"], p);
    assert_eq!(arm.stdout, want, "{}", arm.stderr);
}
