//! Programs migrate x86_64 → aarch64, aarch64 → x86_64 and back and forth,
//! at many different points; what they print, the files they write and their
//! exit codes equal an uninterrupted native run (DESIGN.md §5).

use hc_tests::*;
use std::path::{Path, PathBuf};

/// One example: its arguments, points for single migrations, points for
/// ping-pong runs of ten hops.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    single: &'static [u64],
    ping_pong: &'static [u64],
    /// A file the program writes (relative to its directory), compared too.
    writes: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "tailcalls",
        args: &[],
        // About 3160 points, all inside functions entered by sibling calls
        // (their loops call scramble(), which cannot reach a point: unrolled,
        // one poll per eight iterations).
        single: &[1, 1500, 3000],
        ping_pong: &[7, 280],
        writes: None,
    },
    Case {
        name: "recursion",
        args: &[],
        single: &[1, 2100, 40000],
        ping_pong: &[2100, 7000],
        writes: None,
    },
    Case {
        name: "linked",
        args: &[],
        single: &[1, 5000, 150000],
        ping_pong: &[13, 16000],
        writes: None,
    },
    Case {
        name: "tls",
        args: &[],
        single: &[1, 1500, 2900],
        ping_pong: &[7, 250],
        writes: None,
    },
    Case {
        name: "stackrefs",
        args: &[],
        // About 614 points in all: work()'s short loops run poll-free
        // copies, nested()'s string loop polls once per four characters;
        // 540 and 610 are below lookup()'s slow path, inside its lifetime
        // episode (6 and 4 frames).
        single: &[1, 250, 500, 540, 610],
        ping_pong: &[3, 45],
        writes: None,
    },
    Case {
        name: "numeric",
        args: &[],
        // 401 points in all: short call-free loops run poll-free copies.
        single: &[1, 100, 390],
        ping_pong: &[2, 35],
        writes: None,
    },
    Case {
        name: "longdouble",
        args: &[],
        // About 91300 points: work()'s data-dependent loops, unrolled (one
        // poll per four iterations), with long doubles live in its callers.
        single: &[1, 3, 40000, 91000],
        ping_pong: &[7, 9000],
        writes: None,
    },
    Case {
        name: "variadic",
        args: &[],
        // About 9900 points, in the loops of the variadic functions' bodies
        // (churn()'s short loop is versioned poll-free), each with a va_list
        // half read.
        single: &[1, 3, 13, 2500, 7777, 9900],
        ping_pong: &[5, 900],
        writes: None,
    },
    Case {
        name: "wide",
        args: &[],
        single: &[1, 2, 5, 6, 7, 900, 4000],
        ping_pong: &[3, 1100],
        writes: None,
    },
    Case {
        name: "jumps",
        args: &[],
        single: &[1, 3, 13, 2000, 30000, 100000],
        ping_pong: &[5, 7000],
        writes: None,
    },
    Case {
        name: "layouts",
        args: &["data.txt"],
        single: &[1, 3, 7, 100, 400],
        ping_pong: &[2, 40],
        writes: None,
    },
    Case {
        name: "workdir",
        args: &[],
        single: &[1, 3, 5000, 15000],
        ping_pong: &[2, 1500],
        writes: Some("inner/made-after.txt"),
    },
    Case {
        name: "signals",
        args: &[],
        single: &[1, 3, 5000, 15000],
        ping_pong: &[2, 1500],
        writes: None,
    },
    Case {
        name: "sockets",
        args: &[],
        single: &[1, 3, 5000, 15000],
        ping_pong: &[2, 1500],
        writes: None,
    },
    Case {
        name: "loops",
        args: &[],
        // 6050 points: inside unrolled loops, polled long loops, calls
        // (entry polls only where recursion can need them).
        single: &[1, 3, 700, 3001, 6000],
        ping_pong: &[2, 600],
        writes: None,
    },
    Case {
        name: "dispatch",
        args: &[],
        // About 840000 points: indirect calls, printf and nested runs of a
        // computed-goto interpreter.
        single: &[1, 3, 90000, 800000],
        ping_pong: &[7, 60000],
        writes: None,
    },
    Case {
        name: "threaded",
        args: &[],
        // About 24 M points: forty runs of each direct-threaded
        // interpreter, one poll per instruction it interprets.
        single: &[1, 3, 5_000_000, 12_000_000, 23_000_000],
        ping_pong: &[7, 2_000_000],
        writes: None,
    },
    Case {
        name: "remap",
        args: &[],
        // About 1.51 M points, three rounds of ~500 k: 15000 is before the
        // first growth, 300000 inside round 0's scans, the rest in later
        // rounds (blocks that restore mapped from the dump, then moved).
        single: &[1, 15000, 300000, 560000, 1100000],
        ping_pong: &[15000, 120000],
        writes: None,
    },
    Case {
        name: "files",
        args: &["out.txt"],
        // 20703 points in all (loops without sites poll once per four
        // iterations, once per eight when they call).
        single: &[1, 3000, 20000],
        ping_pong: &[17, 1800],
        writes: Some("out.txt"),
    },
];

fn case(name: &str) -> &'static Case {
    CASES.iter().find(|c| c.name == name).expect("known case")
}

/// Runs `route` at point `n` in a fresh directory; checks output, exit code,
/// written file and the number of migrations against the native run.
fn check(c: &Case, route: &str, n: u64) -> Run {
    let app = example(c.name);
    let native_dir = tempfile::tempdir().unwrap();
    let expected = native(&app, c.args, native_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let at = n.to_string();
    let mut args = vec![
        "run",
        "--migrate",
        route,
        "--at-point",
        &at,
        app.to_str().unwrap(),
    ];
    args.extend(c.args);
    let got = hcontainer(&args, dir.path());
    let what = format!("{} --migrate {route} --at-point {n}", c.name);
    assert_same(&expected, &got, &what);
    // Every site of the examples can migrate: a refused attempt means a
    // destination failed to restore (the source then carried on).
    assert!(
        !got.stderr.contains("refused") && !got.stderr.contains("not possible"),
        "{what}: a migration attempt was refused\n{}",
        got.stderr
    );
    let hops = route.split(',').count() - 1;
    assert_eq!(
        got.migrations().len(),
        hops,
        "{what}: expected {hops} migrations\n{}",
        got.stderr
    );
    if let Some(file) = c.writes {
        let want = std::fs::read(native_dir.path().join(file)).unwrap();
        let have = std::fs::read(dir.path().join(file)).unwrap();
        assert!(
            want == have,
            "{what}: {file} differs from the uninterrupted run's"
        );
    }
    got
}

fn runs_alike_on_aarch64(name: &str) {
    let c = case(name);
    let app = example(name);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let expected = native(&app, c.args, a.path());
    let mut args = vec!["run", "--isa", "aarch64", app.to_str().unwrap()];
    args.extend(c.args);
    let got = hcontainer(&args, b.path());
    assert_same(&expected, &got, &format!("{name} on aarch64"));
}

fn all_routes(name: &str) {
    let c = case(name);
    runs_alike_on_aarch64(name);
    for &n in c.single {
        check(c, "x86_64,aarch64", n);
        check(c, "aarch64,x86_64", n);
    }
    for (i, &n) in c.ping_pong.iter().enumerate() {
        let first = if i % 2 == 0 { "x86_64" } else { "aarch64" };
        check(c, &ping_pong(first, 10), n);
    }
}

#[test]
fn frames_left_by_sibling_calls() {
    all_routes("tailcalls");
}

#[test]
fn recursion() {
    all_routes("recursion");
}

#[test]
fn linked_structures_and_function_pointers() {
    all_routes("linked");
}

#[test]
fn thread_locals_globals_static_locals() {
    all_routes("tls");
}

#[test]
fn address_taken_locals_referenced_from_the_heap() {
    all_routes("stackrefs");
    // lookup()'s temporary is taken only on its slow path: the fast path,
    // up to its first return, does not touch the shadow-stack pointer.
    let code = disassemble(&example("stackrefs"), "lookup");
    let fast = code.split("ret").next().unwrap();
    assert!(!fast.contains("%fs"), "lookup's fast path:\n{code}");
    assert!(
        code.contains("%fs"),
        "lookup has no shadow frame at all:\n{code}"
    );
}

#[test]
fn doubles_and_vectors_live_across_calls() {
    all_routes("numeric");
}

#[test]
fn long_doubles_live_across_calls_keep_every_bit() {
    // x87 extended on x86_64, binary128 on aarch64: carried as binary128,
    // converted exactly. A call that returns one is no site (LLVM's x86_64
    // back end), so the example returns none from a function with sites.
    sites_at_least(&example("longdouble"), 100.0);
    all_routes("longdouble");
    // 1/3 computed on x86_64 has x87's 64-bit significand: printed after a
    // move to aarch64 it must still read as x86_64 prints it (the rounded
    // value, not binary128's). Computed on aarch64 and narrowed on x86_64,
    // it reads the same too.
    let digits = Case {
        name: "longdouble",
        args: &["digits"],
        single: &[],
        ping_pong: &[],
        writes: None,
    };
    for route in ["x86_64,aarch64", "aarch64,x86_64"] {
        let got = check(&digits, route, 50);
        assert!(
            String::from_utf8_lossy(&got.stdout).contains("1/3 = 3.33333333333333333342e-01"),
            "{route}: {}",
            String::from_utf8_lossy(&got.stdout)
        );
    }
}

#[test]
fn variadic_functions_migrate_with_their_va_list_half_read() {
    // Direct calls pass the variable arguments in an area of the caller's
    // frame; each va_list (and va_copy, and one handed to another
    // function) is carried as the address of its next argument and written
    // back in the destination's layout. Without that every migration here
    // crashed (SIGSEGV reading a foreign va_list).
    sites_at_least(&example("variadic"), 100.0);
    all_routes("variadic");
}

#[test]
fn wide_integers_small_vectors_and_struct_arguments_live_across_calls() {
    // i128, <8 x i32>, <4 x i8>, <2 x i16> and a struct argument coerced
    // differently by each ISA's ABI: every site migratable.
    sites_at_least(&example("wide"), 100.0);
    all_routes("wide");
}

#[test]
fn setjmp_buffers_armed_before_a_migration_catch_errors_after_it() {
    sites_at_least(&example("jumps"), 100.0);
    all_routes("jumps");
}

#[test]
fn struct_stat_and_isa_specific_stack_slots() {
    // struct stat in a global, on the heap and on the stack; a long double
    // array dead across the long calls. Only the qsort call, after which the
    // array is still read, is left out.
    sites_at_least(&example("layouts"), 85.0);
    all_routes("layouts");
}

#[test]
fn computed_goto_interpreter_resumes_in_its_copy() {
    // `goto *labels[op]`: the resume copy jumps through a table of its own
    // labels (a copy that used the original's would run the original's code
    // on the copy's frame). The migrations run the copy after each restore.
    let app = example("dispatch");
    let exe = std::fs::read(&app).unwrap();
    let elf = object::File::parse(&*exe).unwrap();
    let addr = |name: &str| {
        use object::{Object, ObjectSymbol};
        let s = elf.symbols().find(|s| s.name() == Ok(name));
        format!(
            "{:#x}",
            s.unwrap_or_else(|| panic!("no symbol {name}")).address()
        )
    };
    let (own, copy) = (disassemble(&app, "run"), disassemble(&app, "run.hc.resume"));
    let (table, copy_table) = (addr("run.labels"), addr("run.labels.hc.resume"));
    assert!(own.contains(&table) && !own.contains(&copy_table), "{own}");
    assert!(
        copy.contains(&copy_table) && !copy.contains(&table),
        "{copy}"
    );
    all_routes("dispatch");
}

#[test]
fn working_directory_and_umask() {
    all_routes("workdir");
}

#[test]
fn signal_handlers_blocked_signals_and_alarms() {
    all_routes("signals");
}

#[test]
fn pipes_socket_pairs_and_a_listening_tcp_socket() {
    all_routes("sockets");
}

#[test]
fn working_directories_of_every_length_migrate() {
    // The dump carries the working directory's path padded to 8 bytes: a
    // padding bug once passed only for lengths that happened to line up.
    let c = case("workdir");
    let app = example("workdir");
    let base = tempfile::tempdir().unwrap();
    let expected = native(&app, c.args, base.path());
    for len in 1..=8 {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d".repeat(len));
        std::fs::create_dir(&sub).unwrap();
        let got = hcontainer(
            &[
                "run",
                "--migrate",
                "x86_64,aarch64",
                "--at-point",
                "5000",
                app.to_str().unwrap(),
            ],
            &sub,
        );
        assert_same(
            &expected,
            &got,
            &format!("workdir in a directory named {len} characters"),
        );
        assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
    }
}

#[test]
fn large_blocks_grown_and_discarded_after_restore_behave_as_anonymous_memory() {
    // Restore maps large regions from the dump: realloc (musl's mremap),
    // mremap of the program's own mapping and MADV_DONTNEED must still see
    // fresh zero pages, never the file's next pages (SIGBUS past its end).
    all_routes("remap");
}

#[test]
fn files_and_buffered_output() {
    all_routes("files");
}

#[test]
fn thousands_of_frames_migrate() {
    // Point 1950 is the entry of a call about 1950 frames deep in the first
    // descent (the bottom loop, 200 call-free iterations, has no poll).
    let got = check(case("recursion"), "x86_64,aarch64,x86_64", 1950);
    for line in got.migrations() {
        let frames: usize = line
            .split(", ")
            .find_map(|p| p.strip_suffix(" frames"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no frame count in {line:?}"));
        assert!(frames >= 1000, "expected at least 1000 live frames: {line}");
    }
}

#[test]
fn time_based_migration() {
    let app = example("nbody");
    let dir = tempfile::tempdir().unwrap();
    let expected = native(&app, &["3000000"], dir.path());
    let got = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--every",
            "50ms",
            app.to_str().unwrap(),
            "3000000",
        ],
        dir.path(),
    );
    assert_same(&expected, &got, "nbody --every 50ms");
    assert!(
        !got.migrations().is_empty(),
        "no migration happened:\n{}",
        got.stderr
    );
}

#[test]
fn program_ending_before_a_migration_is_reported() {
    let app = example("numeric");
    let dir = tempfile::tempdir().unwrap();
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 100_000_000, dir.path());
    assert_same(&expected, &got, "numeric with an unreachable point");
    assert!(
        got.stderr
            .contains("exited (status 0) before migration 1 of 1 (x86_64 -> aarch64)"),
        "stderr: {}",
        got.stderr
    );
}

#[test]
fn built_with_make_and_verified() {
    // The examples' Makefile builds them with CC=hcc; every result verifies.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(examples()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = std::process::Command::new("make")
        .args(["-s", "CC=hcc", "all"])
        .env("PATH", &path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for name in [
        "recursion",
        "linked",
        "tls",
        "stackrefs",
        "numeric",
        "files",
        "nbody",
        "wide",
        "jumps",
        "layouts",
        "workdir",
        "signals",
        "sockets",
        "dispatch",
        "remap",
        "threaded",
    ] {
        let app = dir.path().join(name);
        let v = hcontainer(&["verify", app.to_str().unwrap()], Path::new("."));
        assert_eq!(v.code, Some(0), "verify {name}: {}", v.stderr);
    }
}

#[test]
fn loops_reshaped_for_fewer_polls() {
    all_routes("loops");
}

#[test]
fn reshaped_loops_compute_what_plain_clang_computes() {
    // Both hcc runs above compare with hcc's own native run; this compares
    // with a build that no hcc transformation touched.
    computes_what_plain_clang_computes("loops");
}

#[test]
fn direct_threaded_interpreters_jump_to_label_addresses_kept_in_memory() {
    // threaded.c translates its program once into label addresses on the
    // heap (and into offsets from a base label), then runs it many times.
    // Those addresses were the source ISA's code: after a migration the
    // interpreter jumped into the wrong code (SIGSEGV under qemu). Now they
    // are the same on every ISA (labels.rs), and each `goto *` goes
    // through the variant's own jump table.
    computes_what_plain_clang_computes("threaded");
    all_routes("threaded");
}

/// Compares an example's hcc build, run on both ISAs, with a plain
/// `clang -O2` build of it.
fn computes_what_plain_clang_computes(name: &str) {
    let app = example(name);
    let plain = build_dir().join(format!("{name}.plain"));
    plain_build(&examples().join(format!("{name}.c")), &plain);
    let dir = tempfile::tempdir().unwrap();
    let want = native(&plain, &[], dir.path());
    assert_same(
        &want,
        &native(&app, &[], dir.path()),
        "hcc's x86_64 variant",
    );
    let arm = hcontainer(
        &["run", "--isa", "aarch64", app.to_str().unwrap()],
        dir.path(),
    );
    assert_same(&want, &arm, "hcc's aarch64 variant");
}

#[test]
fn calls_that_cannot_reach_a_migration_point_are_no_sites() {
    // mix() and spin() have no loop and call nothing: no migration point can
    // run while they do, so calls to them — direct, or through a constant
    // table of such functions — need no statepoint, site or resume path.
    // walk() loops (its header polls): calls to it, also through a table,
    // stay sites.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "pointfree",
        r#"#include <stdio.h>
typedef unsigned (*step_fn)(unsigned, unsigned);
static __attribute__((noinline)) unsigned mix(unsigned h, unsigned i) {
    return (h ^ i) * 2654435761u + (h >> 7);
}
static __attribute__((noinline)) unsigned spin(unsigned h, unsigned i) {
    return (h << 5 | h >> 27) + i;
}
static const step_fn steps[] = {mix, spin};
static __attribute__((noinline)) unsigned walk(unsigned h, unsigned n) {
    for (unsigned i = 0; i < n; i++) h = mix(h, i) + steps[h & 1](i, h);
    return h;
}
static __attribute__((noinline)) unsigned walk_back(unsigned h, unsigned n) {
    for (unsigned i = n; i > 0; i--) h = spin(h, i);
    return h;
}
static const step_fn walks[] = {walk, walk_back};
int main(void) {
    unsigned h = 1;
    for (int r = 0; r < 3000; r++) {
        h = walks[r % 3 == 0](h, 100 + r % 7);
        if (r % 500 == 0) printf("%d %u\n", r, h);
    }
    printf("%u\n", mix(h, 3));
    return 0;
}
"#,
    );
    let data = std::fs::read(&app).unwrap();
    let file = object::File::parse(data.as_slice()).unwrap();
    let meta = hc_metadata::meta::BinaryMeta::decode(
        hc_metadata::container::section(&file, hc_metadata::meta::SECTION).unwrap(),
    )
    .unwrap();
    // The callees of a function's call sites (its polls are sites too).
    let calls = |name: &str| -> Vec<String> {
        let f = meta.functions.iter().find(|f| f.name == name);
        let f = f.unwrap_or_else(|| panic!("{name} not in the metadata"));
        f.sites
            .iter()
            .filter(|s| s.kind == hc_metadata::sites::SiteKind::Call)
            .map(|s| s.callee.clone())
            .collect()
    };
    assert_eq!(calls("walk"), Vec::<String>::new(), "walk's calls");
    // The indirect call through `walks` (no callee name).
    assert_eq!(calls("main"), vec![String::new()], "main's calls");
    // About 44900 points.
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 2), ("aarch64,x86_64", 40000)],
    );
}

#[test]
fn leaf_functions_that_return_early_push_nothing_on_their_way_out() {
    // greater() calls nothing and mostly returns from its first comparisons
    // (like bzip2's mainGtU); its loop polls. The poll is a load and a
    // branch there, not a patched no-op: LLVM moves the register saves onto
    // the loop's path only when no block is an asm-goto target. Migrations
    // from inside that loop carry on where an uninterrupted run would.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "early",
        r#"#include <stdio.h>
static unsigned char text[1 << 17];
static __attribute__((noinline)) int greater(unsigned a, unsigned b, unsigned n) {
    if (text[a] != text[b]) return text[a] > text[b];
    if (text[a + 1] != text[b + 1]) return text[a + 1] > text[b + 1];
    for (unsigned k = 2; k < n; k++) {
        unsigned x = (a + k) % n, y = (b + k) % n;
        if (text[x] != text[y]) return text[x] > text[y];
    }
    return 0;
}
int main(void) {
    unsigned s = 1;
    for (unsigned i = 0; i < sizeof text; i++) {
        s = s * 1103515245 + 12345;
        text[i] = (i >> 12) % 2 ? 'a' : "ab"[(s >> 16) & 1];
    }
    unsigned long count = 0;
    for (unsigned i = 0; i < 3000; i++) {
        count += greater(i * 7919 % sizeof text, i * 104729 % sizeof text, sizeof text);
        if (i % 500 == 0) printf("%u %lu\n", i, count);
    }
    printf("%lu\n", count);
    return 0;
}
"#,
    );
    let code = disassemble(&app, "greater");
    assert!(
        first_instruction(&code).is_some_and(|l| !l.contains("push")),
        "greater saves registers before its early returns:\n{code}"
    );
    assert!(
        code.contains("__hc_poll>"),
        "greater's loop does not poll with a load and a branch:\n{code}"
    );
    // About 589000 points, nearly all in greater's loop.
    migrates_in_callee(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 5000), ("aarch64,x86_64", 100000)],
    );
}

#[test]
fn functions_that_can_return_early_have_redirected_entries_too() {
    // scan() returns at once for short strings; otherwise it loops, calling
    // through a pointer (so it needs an entry poll). Most of its calls are
    // short, so its entry has no poll instruction: while a migration is
    // requested it is a jump to its copy (FORMATS §5 "Entries"), loops or
    // not. Migrations inside its loop, and at its entry, carry on where an
    // uninterrupted run would.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "bare",
        r#"#include <stdio.h>
static unsigned long total;
static void note(unsigned long h) { total += h & 0xffff; }
/* Volatile: the call stays indirect. */
static void (*volatile sink)(unsigned long) = note;
static __attribute__((noinline)) unsigned long scan(const unsigned char *s, unsigned long n) {
    if (n < 6)
        return n + s[0];
    unsigned long h = 5381;
    for (unsigned long k = 0; k < n; k++) {
        h = h * 33 + s[k];
        if ((h & 255) == 7)
            sink(h);
    }
    return h;
}
int main(void) {
    static unsigned char text[4096];
    unsigned long seed = 1, sum = 0;
    for (int i = 0; i < 4096; i++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        text[i] = (unsigned char)(seed >> 56);
    }
    for (unsigned long r = 0; r < 20000; r++) {
        unsigned long n = r % 5 ? r % 6 : 200 + r % 300;
        sum += scan(text + r % 3000, n);
        if (r % 4000 == 0)
            printf("%lu %lu %lu\n", r, sum, total);
    }
    printf("%lu %lu\n", sum, total);
    return 0;
}
"#,
    );
    for exe in variants_of(&app, dir.path()) {
        let code = disassemble(&exe, "scan");
        // Up to its first branch (the length test), no poll.
        let head: Vec<&str> = code
            .lines()
            .skip_while(|l| first_instruction(l).is_none())
            .take_while(|l| !l.contains("\tj") && !l.contains("\tb."))
            .collect();
        assert!(
            head.iter().all(|l| !l.contains("nop")),
            "{}: scan polls at its entry:\n{code}",
            exe.display()
        );
        assert!(
            redirects(&exe).contains(&(address(&exe, "scan"), address(&exe, "scan.hc.resume"))),
            "{}: scan's entry is not listed as redirected to its copy",
            exe.display()
        );
    }
    migrates_in_callee(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 3000), ("aarch64,x86_64", 700000)],
    );
}

#[test]
fn loops_that_call_a_polling_function_on_every_trip_do_not_poll_themselves() {
    // Each trip of sum()'s loop calls fib(), which is recursive and so
    // polls at its entry: the loop passes a migration point on every trip
    // without one of its own (its resume copy keeps one, for restores).
    // Migrations in fib(), with sum()'s loop below, carry on where an
    // uninterrupted run would.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "covered",
        r#"#include <stdio.h>
static __attribute__((noinline)) unsigned long fib(unsigned n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
static __attribute__((noinline)) unsigned long sum(unsigned from, unsigned n) {
    unsigned long s = 0;
    for (unsigned i = from; i < from + n; i++)
        s = s * 3 + fib(i % 13);
    return s;
}
int main(void) {
    unsigned long t = 0;
    for (unsigned k = 0; k < 40; k++) {
        t ^= sum(k, 1000);
        if (k % 10 == 9)
            printf("%u %lu\n", k, t);
    }
    return 0;
}
"#,
    );
    for exe in variants_of(&app, dir.path()) {
        assert_eq!(
            polls_in(&exe, "sum"),
            0,
            "{}: sum() polls although every trip of its loop calls fib()",
            exe.display()
        );
        assert!(
            polls_in(&exe, "sum.hc.resume") > 0,
            "{}: sum()'s copy has no poll for its restores to enter the loop by",
            exe.display()
        );
    }
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 5000), ("aarch64,x86_64", 2000000)],
    );
}

#[test]
fn loops_that_call_an_early_returning_function_with_a_loop_do_not_poll_themselves() {
    // greater() decides most comparisons on its first bytes and returns
    // before its loop, as bzip2's mainGtU does: its entry poll is a
    // redirected entry, no instruction, so it has one although it is on no
    // call cycle, and sort()'s loops, which call it on every trip, poll no
    // more (bzip2's block sort: 357.8 M -> 351.8 M instructions).
    // Migrations at its entry and in its loop, with sort() below, carry on
    // where an uninterrupted run would.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "early",
        r#"#include <stdio.h>
static unsigned char text[4096];
static __attribute__((noinline)) int greater(unsigned a, unsigned b, unsigned n) {
    if (text[a] != text[b]) return text[a] > text[b];
    if (text[a + 1] != text[b + 1]) return text[a + 1] > text[b + 1];
    for (unsigned k = 2; k < n; k++)
        if (text[(a + k) % n] != text[(b + k) % n])
            return text[(a + k) % n] > text[(b + k) % n];
    return 0;
}
static __attribute__((noinline)) void sort(unsigned *v, unsigned n, unsigned len) {
    for (unsigned i = 1; i < n; i++) {
        unsigned x = v[i], j = i;
        while (greater(v[j - 1], x, len)) {
            v[j] = v[j - 1];
            if (--j == 0)
                break;
        }
        v[j] = x;
    }
}
int main(void) {
    unsigned s = 1;
    for (unsigned i = 0; i < sizeof text; i++) {
        s = s * 1103515245 + 12345;
        text[i] = "ab"[(s >> 16) % 2];
    }
    static unsigned v[1500];
    for (int round = 0; round < 6; round++) {
        for (unsigned i = 0; i < 1500; i++)
            v[i] = (i * 7919 + round) % 4000;
        sort(v, 1500, 4000);
        unsigned long h = 0;
        for (unsigned i = 0; i < 1500; i++)
            h = h * 31 + v[i];
        printf("round %d: %lu\n", round, h);
    }
    return 0;
}
"#,
    );
    for exe in variants_of(&app, dir.path()) {
        assert_eq!(
            polls_in(&exe, "sort"),
            0,
            "{}: sort() polls although every trip of its loops calls greater()",
            exe.display()
        );
    }
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 3000), ("aarch64,x86_64", 400000)],
    );
}

#[test]
fn loops_with_many_live_values_hand_them_over_where_they_are() {
    // mix()'s loop keeps 24 accumulators live. Its poll does not write them
    // into the runtime's record buffer (a store per value, and around the
    // patched no-op the register allocator then stored registers on every
    // trip): the stack map says where each one is, in a register the
    // migration point saves or in the frame. Migrations from inside the
    // loop carry every accumulator.
    let dir = tempfile::tempdir().unwrap();
    let decl: Vec<String> = (0..24).map(|k| format!("a{k} = {}", k + 1)).collect();
    let steps: String = (0..24)
        .map(|k| {
            format!(
                "        a{k} = (a{k} ^ (a{} >> {})) * 0x9E3779B97F4A7C15ull + i;\n",
                (k + 23) % 24,
                k % 13 + 1
            )
        })
        .collect();
    let prints: String = (0..24)
        .map(|k| format!("    printf(\"{k} %llu\\n\", a{k});\n"))
        .collect();
    let app = compile_source(
        dir.path(),
        "heavy",
        &format!(
            "#include <stdio.h>\n\
             static __attribute__((noinline)) void mix(unsigned long n) {{\n\
             \x20   unsigned long long {};\n\
             \x20   for (unsigned long i = 0; i < n; i++) {{\n{steps}    }}\n{prints}}}\n\
             int main(void) {{\n    mix(300000);\n    return 0;\n}}\n",
            decl.join(", ")
        ),
    );
    let code = disassemble(&app, "mix");
    assert!(
        !code.contains("<__hc_poll_record>")
            && !code.contains("<__hc_poll_record+")
            && !code.contains("__hc_poll>"),
        "mix's poll writes the record buffer or is no patched no-op:\n{code}"
    );
    // About 300000 points, one per trip.
    migrates_in_callee(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 1000), ("aarch64,x86_64", 250000)],
    );
}

#[test]
fn comparisons_live_across_calls_are_recomputed_on_resume() {
    // run() keeps `wide` (shift > 3) live across its calls to step(), and
    // `shift` with it: the comparison travels as `shift` and is computed
    // again when run()'s frame resumes on the other ISA. Migrations inside
    // step() (three frames) in a run where `wide` is false and in one where
    // it is true carry on where an uninterrupted run would.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "tests",
        r#"#include <stdio.h>
static volatile unsigned long sink;
static __attribute__((noinline)) unsigned long step(unsigned long i) {
    unsigned long x = i;
    while ((x & 0xff) != 0x5a)
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    sink = x;
    return x >> 60;
}
static __attribute__((noinline)) unsigned long run(unsigned long shift, unsigned long n) {
    unsigned long sum = 0;
    int wide = shift > 3;
    for (unsigned long i = 0; i < n; i++) {
        unsigned long r = step(i);
        sum += wide ? r << shift : r + shift;
        if (wide)
            sum ^= i;
    }
    return sum;
}
int main(int argc, char **argv) {
    (void)argv;
    for (unsigned long shift = 0; shift < 7; shift += 3)
        printf("%lu %lu\n", shift, run(shift + argc - 1, 2000));
    return 0;
}
"#,
    );
    // About 170000 points, nearly all in step()'s loop: 20000 is in the
    // first run (shift 0), 150000 in the last (shift 6).
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 20000), ("aarch64,x86_64", 150000)],
        3,
    );
}

#[test]
fn stack_objects_used_only_in_a_branch_migrate_with_their_frame() {
    // run()'s array lives on the shadow stack (its uses span blocks, so the
    // frame is taken at the entry), and its address is computed in the
    // branch that uses it, not at run()'s entry (with `&v[2]`, which LICM
    // hoists there); it is live across
    // the call to fill(), where the migration happens (three frames), so
    // run()'s frame gets it again from its shadow frame on the other ISA,
    // and the sums read what fill() wrote there on either side.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "branch",
        r#"#include <stdio.h>
static volatile unsigned long sink;
static __attribute__((noinline)) void fill(unsigned long *v, unsigned long i) {
    unsigned long x = i;
    for (int k = 0; k < 4; k++) {
        while ((x & 0xff) != 0x5a)
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        v[k] = x >> 40;
        x++;
    }
    sink = x;
}
static __attribute__((noinline)) unsigned long mix(const unsigned long *v) {
    return v[3] ^ (v[1] << 1) ^ (v[2] << 2);
}
static __attribute__((noinline)) unsigned long run(unsigned long n) {
    unsigned long sum = 0;
    for (unsigned long i = 0; i < n; i++) {
        if (i % 3 == 0) {
            unsigned long v[4];
            fill(v, i);
            if (v[0] & 1)
                sum += mix(v);
            else
                sum += v[2];
        } else {
            sum += i;
        }
    }
    return sum;
}
int main(void) {
    printf("%lu\n", run(3000));
    return 0;
}
"#,
    );
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 30000), ("aarch64,x86_64", 90000)],
        3,
    );
}

#[test]
fn cycles_entered_at_two_blocks_poll_too() {
    // spin()'s two blocks form a cycle that is entered at either (a `goto`
    // into it): no natural loop, so no loop header. Without a poll where
    // the cycle is entered, no migration could happen while spin() runs:
    // the program ended first ("exited before migration"). Both calls are
    // long enough for the points; the second enters at `b`.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "irreducible",
        r#"#include <stdio.h>
static __attribute__((noinline)) unsigned long spin(unsigned long n, int odd) {
    unsigned long x = n, acc = 0;
    if (odd)
        goto b;
a:
    acc += x * 3 + (acc >> 5);
    x = x * 6364136223846793005ul + 1442695040888963407ul;
    if (--n == 0)
        return acc;
    if ((x >> 60) == 3)
        acc++;
    goto b;
b:
    acc ^= (x >> 7) + (acc << 3);
    x = x * 2862933555777941757ul + 3037000493ul;
    if (--n == 0)
        return acc;
    goto a;
}
int main(void) {
    unsigned long s = 0;
    for (int k = 0; k < 2; k++) {
        s += spin(3000000ul + k, k);
        printf("%d %lu\n", k, s);
    }
    return 0;
}
"#,
    );
    migrates_in_callee(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 1000), ("aarch64,x86_64", 2000000)],
    );
    // Duff's device: the switch enters the copy loop at any of its eight
    // stores. Its outer loop alone polls 20000 times; the points below are
    // on the edge round the copy loop.
    let duff = compile_source(
        dir.path(),
        "duff",
        r#"#include <stdio.h>
static __attribute__((noinline)) unsigned long churn(unsigned char *to,
        const unsigned char *from, unsigned long count, unsigned long rounds) {
    unsigned long acc = 0;
    for (unsigned long r = 0; r < rounds; r++) {
        unsigned long n = (count + 7) / 8;
        unsigned char *t = to;
        const unsigned char *f = from;
        switch (count % 8) {
        case 0: do { *t++ = *f++ ^ (unsigned char)r;
        case 7:      *t++ = *f++ + 1;
        case 6:      *t++ = *f++ ^ 0x55;
        case 5:      *t++ = *f++;
        case 4:      *t++ = *f++ - 3;
        case 3:      *t++ = *f++;
        case 2:      *t++ = *f++ ^ 0xaa;
        case 1:      *t++ = *f++;
                } while (--n > 0);
        }
        acc = acc * 31 + to[r % count];
        count = count % 4093 + 1000 + (r & 7);
    }
    return acc;
}
int main(void) {
    static unsigned char a[8192], b[8192];
    for (int i = 0; i < 8192; i++)
        b[i] = (unsigned char)(i * 7);
    printf("%lu\n", churn(a, b, 4099, 20000));
    return 0;
}
"#,
    );
    migrates_in_callee(
        &duff,
        dir.path(),
        &[("x86_64,aarch64", 50000), ("aarch64,x86_64", 150000)],
    );
}

#[test]
fn dispatch_loops_poll_through_their_label_table() {
    // run()'s opcodes call nothing, so the only way round its dispatch loop
    // is `goto *labels[op]`, and the loop has no poll of its own: while a
    // migration is requested, the runtime fills `labels` with trampolines
    // that poll on the way to each opcode (FORMATS §5 "Label tables").
    // Without that swap no point would be reached inside run(). The table
    // holds each variant's own code addresses, so it must not travel with
    // the program's data: after a migration the destination jumps through
    // its own.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "labels",
        r#"#include <stdio.h>
enum { LIT, ADD, MUL, XOR, SHR, DUP, SWAP, DEC, JNZ, HALT };
static __attribute__((noinline)) unsigned long run(const long *code, unsigned long *sp) {
    static const void *const labels[] = {&&lit, &&add, &&mul, &&xor, &&shr,
                                         &&dup, &&swap, &&dec, &&jnz, &&halt};
    const long *pc = code;
#define NEXT goto *labels[*pc++]
    NEXT;
lit: *sp++ = (unsigned long)*pc++; NEXT;
add: sp--; sp[-1] += sp[0]; NEXT;
mul: sp--; sp[-1] *= sp[0]; NEXT;
xor: sp--; sp[-1] ^= sp[0]; NEXT;
shr: sp--; sp[-1] >>= sp[0]; NEXT;
dup: *sp = sp[-1]; sp++; NEXT;
swap: { unsigned long t = sp[-1]; sp[-1] = sp[-2]; sp[-2] = t; NEXT; }
dec: sp[-1]--; NEXT;
jnz: { long to = *pc++; if (sp[-1]) pc = code + to; NEXT; }
halt: return sp[-2];
}
int main(void) {
    /* (x n) -> x = x * a + c; x ^= x >> 29 while --n. */
    long code[] = {LIT, 0, LIT, 600000, SWAP, LIT, 6364136223846793005l, MUL,
                   LIT, 1442695040888963407l, ADD, DUP, LIT, 29, SHR, XOR,
                   SWAP, DEC, JNZ, 4, HALT};
    unsigned long stack[16];
    for (long k = 1; k <= 2; k++) {
        code[1] = k;
        printf("%ld %016lx\n", k, run(code, stack));
    }
    return 0;
}
"#,
    );
    migrates_in_callee(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 1000), ("aarch64,x86_64", 12000000)],
    );
}

#[test]
fn stack_objects_dead_at_every_site_stay_in_the_native_frame() {
    // key()'s `e` is written by frexp() after its last call that can reach
    // a migration point: no migration can find it alive, so it stays in
    // key()'s own frame (no shadow-stack traffic: no thread-pointer access
    // in key()), also in the copy a restore enters, whose frame has it too.
    // Migrations happen in step()'s loop, key() being the frame below.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "native",
        r#"#include <math.h>
#include <stdio.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
static __attribute__((noinline)) unsigned long key(double d, unsigned long n) {
    unsigned long acc = (unsigned long)d;
    for (unsigned long i = 0; i < n; i++)
        acc = step(acc + i);
    int e;
    double m = frexp(d + (double)(acc >> 40), &e);
    return acc ^ (unsigned long)(m * 1e9) ^ ((unsigned long)e << 56);
}
int main(void) {
    unsigned long s = 0;
    for (int k = 1; k <= 40; k++) {
        s ^= key(k * 1234.5, 200);
        if (k % 10 == 0)
            printf("%d %lu\n", k, s);
    }
    return 0;
}
"#,
    );
    let code = disassemble(&app, "key");
    assert!(
        !code.contains("%fs:"),
        "key() takes a shadow frame:\n{code}"
    );
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 3000), ("aarch64,x86_64", 9000)],
        3,
    );
}

#[test]
fn errors_caught_by_one_setjmp_keep_its_frame_and_the_shadow_stack() {
    // serve() arms setjmp once and every round ends in a longjmp back to
    // it, as a server's or a REPL's error recovery does: fail()'s 1 KiB
    // shadow frame never reaches its `ret`, so the setjmp must give the
    // shadow stack back (200000 rounds leaked 200 MiB into a 64 MiB stack:
    // SIGSEGV), and serve()'s volatile counters, read only after a longjmp,
    // must migrate with its frame (they stayed in the native frame, which
    // a restore starts afresh: the rounds began again at 0).
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "catch",
        r#"#include <setjmp.h>
#include <stdio.h>
static jmp_buf again;
static __attribute__((noinline)) void fill(unsigned *p, int n, unsigned long x) {
    for (int i = 0; i < n; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x >> 56) == 0x5a);
        p[i] = (unsigned)(x >> 33);
    }
}
static __attribute__((noinline, noreturn)) void fail(int round) {
    unsigned buf[256];
    fill(buf, 256, (unsigned long)round);
    longjmp(again, (int)(buf[round % 256] % 1000) + 1);
}
static __attribute__((noinline)) unsigned long serve(int rounds) {
    volatile int round = 0;
    volatile unsigned long sum = 0;
    int code = setjmp(again);
    if (code) {
        sum = sum * 31 + (unsigned long)code;
        if (round % 25000 == 0)
            printf("round %d sum %lu\n", round, sum);
    }
    if (round < rounds) {
        round = round + 1;
        fail(round);
    }
    return sum;
}
int main(void) {
    printf("%lu\n", serve(200000));
    return 0;
}
"#,
    );
    let run = native(&app, &[], dir.path());
    assert_eq!(run.code, Some(0), "native run: {}", run.stderr);
    assert_eq!(run.stdout_str().lines().count(), 9, "{}", run.stdout_str());
    // In fill()'s loop, four frames deep, early on and late in the rounds.
    migrates_deep(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 3_000_000),
            ("aarch64,x86_64", 40_000_000),
        ],
        4,
    );
}

#[test]
fn a_setjmp_inside_a_loop_migrates_and_catches_errors_after_it() {
    // serve() arms its buffer in every round of its loop, as a REPL or a
    // server recovering from errors does: its first spin() call and the
    // loop's header run before the frame armed the buffer (round 0) and
    // after (every later round), so hcc left the whole function
    // unmigratable ("a call runs both with and without its setjmp buffer
    // armed"). The frame now carries whether it armed the buffer, and
    // `before` and the saved shadow stack pointer, defined in the loop
    // before the setjmp, in slots of their own: a migration anywhere, in
    // round 0 or later, re-arms only what was armed, and the errors
    // step() throws after it land where they did natively.
    let dir = tempfile::tempdir().unwrap();
    let (app, run) = runs_like_plain_clang(
        dir.path(),
        "setjmp_loop",
        r#"#include <setjmp.h>
#include <stdio.h>
static sigjmp_buf env;
static __attribute__((noinline)) unsigned long spin(unsigned long x, int n) {
    for (int i = 0; i < n; i++)
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x >> 58) != 0x2a);
    return x;
}
static __attribute__((noinline)) unsigned long step(int round, unsigned long x) {
    x = spin(x, 30 + round % 7);
    if (((x * 0x9e3779b97f4a7c15ul) >> 61) == 3)
        siglongjmp(env, (int)(x % 1000) + 1);
    return x;
}
static __attribute__((noinline)) unsigned long serve(int rounds) {
    volatile unsigned long x = 1, sum = 0;
    volatile int errors = 0;
    for (volatile int round = 0; round < rounds; round = round + 1) {
        unsigned long before = spin(x, 20);
        int code = sigsetjmp(env, 0);
        if (code) {
            errors = errors + 1;
            sum = sum * 31 + (unsigned long)code + (before >> 50);
            x = before + (unsigned long)code;
            if (errors % 50 == 0)
                printf("round %d errors %d sum %lu\n", round, errors, sum);
            continue;
        }
        x = step(round, x);
        sum = sum + (x >> 40);
    }
    printf("%d errors, sum %lu\n", errors, sum);
    return sum;
}
int main(void) {
    printf("%lu\n", serve(3000));
    return 0;
}
"#,
    );
    let errors: u32 = run
        .stdout_str()
        .lines()
        .rev()
        .nth(1)
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the errors line");
    assert!(errors > 100, "too few errors to test: {}", run.stdout_str());
    sites_at_least(&app, 100.0);
    // In spin() called before the setjmp, early (round 0, not armed yet)
    // and later (armed), and in step() after it.
    let deep = migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 3),
            ("aarch64,x86_64", 1000),
            ("x86_64,aarch64", 100_000),
            ("aarch64,x86_64", 1_000_000),
        ],
    );
    assert!(
        deep.iter().any(|m| m.contains(" 4 frames")),
        "no migration inside step(): {deep:?}"
    );
    for (first, n) in [("x86_64", 7), ("aarch64", 3001), ("x86_64", 20011)] {
        let route = ping_pong(first, 10);
        let got = run_migrating(&app, &route, n, dir.path());
        assert_same(&run, &got, &format!("setjmp_loop {route} at {n}"));
        assert_eq!(got.migrations().len(), 10, "{route} at {n}: {}", got.stderr);
    }
}

#[test]
fn a_va_list_handed_to_a_call_that_never_returns_migrates() {
    // GNU m4's m4_failure: va_start, then the va_list goes to a function
    // that exits, and nothing after the call (`unreachable`). The va_list,
    // read by the callee after a migration, is written back in the
    // destination's layout from its frame — which nothing else carried
    // there: hcc panicked ("no entry found for key") compiling it.
    let dir = tempfile::tempdir().unwrap();
    let source = r#"#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
static unsigned long spin(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x >> 52) != 0x5a5);
    return x;
}
static __attribute__((noinline)) void vreport(int code, const char *fmt, va_list ap) {
    int n = va_arg(ap, int);
    unsigned long x = 0;
    for (int i = 0; i < n; i++)
        x = spin(x + (unsigned long)i);
    const char *s = va_arg(ap, const char *);
    double d = va_arg(ap, double);
    printf(fmt, n, s, d, x >> 40);
    exit(code);
}
static __attribute__((noinline, noreturn)) void fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(code, fmt, ap);
    __builtin_unreachable();
}
int main(int argc, char **argv) {
    (void)argv;
    unsigned long x = 1;
    for (int i = 0; i < 20; i++) {
        x = spin(x);
        printf("%d %lu\n", i, x >> 40);
    }
    fail(2 + argc, "%d %s %.2f %lu\n", 40, "forty", 40.5, 3.25);
}
"#;
    let (app, got) = runs_like_plain_clang(dir.path(), "fail", source);
    assert_eq!(got.code, Some(3));
    // In vreport()'s loop, after its first va_arg and before the others.
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 40_000), ("aarch64,x86_64", 50_000)],
        3,
    );
}

#[test]
fn setjmp_right_after_a_call_in_its_block_compiles_and_migrates() {
    // gawk's debug.c: a call that may reach a migration point, then
    // setjmp in the same block, its result also a phi's incoming value.
    // Splitting the block at those two calls rebuilt phis that hcc still
    // held: it crashed (SIGSEGV) compiling such a function.
    let dir = tempfile::tempdir().unwrap();
    let source = r#"#include <setjmp.h>
#include <stdio.h>
static jmp_buf tag;
static unsigned long total;
static __attribute__((noinline)) void prepare(int n) {
    for (volatile int i = 0; i < n; i++)
        total += (unsigned long)i;
}
static __attribute__((noinline)) void step(unsigned long *x, int i) {
    do
        *x = *x * 6364136223846793005ul + 1442695040888963407ul;
    while ((*x >> 58) != 3);
    if ((*x >> 60) == 7 && i > 1000)
        longjmp(tag, i);
}
static __attribute__((noinline)) int run(int n, unsigned long seed) {
    unsigned long x = seed;
    prepare(3);
    int code = setjmp(tag);
    if (code == 0) {
        for (int i = 0; i < n; i++)
            step(&x, i);
        return -1;
    }
    return code;
}
int main(void) {
    for (int r = 0; r < 200; r++)
        printf("%d\n", run(100000, (unsigned long)r));
    printf("%lu\n", total);
    return 0;
}
"#;
    let (app, got) = runs_like_plain_clang(dir.path(), "armed", source);
    assert_eq!(got.stdout_str().lines().count(), 201);
    // In step()'s loop, with run()'s setjmp armed: the longjmp after the
    // migration lands in the buffer the resume path armed again.
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 300_005), ("aarch64,x86_64", 3_000_000)],
        3,
    );
}

#[test]
fn thread_local_addresses_kept_in_memory_stay_valid() {
    // step() counts through pointers to thread-locals kept on the heap
    // (&counter[2], &big[100]); main reads the thread-locals themselves.
    // musl put the TLS block where each ISA's ABI wants it from the thread
    // pointer, in a static buffer or (for big TLS, as here) an mmap, so
    // after a migration the pointers pointed beside the new block: the
    // counts went on in a stale copy (x86_64 to x86_64 too). The runtime
    // now keeps the block at one address on every ISA.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "tlsptr",
        r#"#include <stdio.h>
#include <stdlib.h>
static __thread long counter[4];
static __thread char big[8192];
struct ctx { long *slot; char *byte; };
static __attribute__((noinline)) void step(struct ctx *c, long i) {
    unsigned long x = (unsigned long)i;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    *c->slot += (long)(x >> 60);
    *c->byte += (char)(x >> 59);
}
int main(void) {
    struct ctx *c = malloc(sizeof *c);
    c->slot = &counter[2];
    c->byte = &big[100];
    for (long i = 0; i < 200000; i++) {
        step(c, i);
        if (i % 50000 == 0)
            printf("%ld %ld %d\n", i, counter[2], big[100]);
    }
    printf("%ld %d %d\n", counter[2], big[100], c->slot == &counter[2] && c->byte == &big[100]);
    return 0;
}
"#,
    );
    migrates_in_callee(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 300_000),
            ("aarch64,x86_64", 600_000),
            ("x86_64,x86_64", 900_000),
        ],
    );
}

#[test]
fn errno_s_address_kept_in_memory_stays_valid() {
    // main keeps &errno on the heap (as a library's error slot would) and
    // checks through it that each errno it sets lands there. musl keeps
    // errno in the thread descriptor, whose place beside the TLS block
    // differs per ISA: after a migration the pointer was stale (68749 of
    // 200000 checks held). The main thread's errno is migrated data now,
    // for the program and libc alike (musl reaches it by another name).
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "errnoptr",
        r#"#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
struct lib { int *err; };
static __attribute__((noinline)) struct lib *open_lib(void) {
    struct lib *l = malloc(sizeof *l);
    l->err = &errno;
    return l;
}
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    struct lib *volatile l = open_lib();
    unsigned long x = 1;
    int held = 0;
    for (int r = 0; r < 200000; r++) {
        x = step(x);
        errno = r & 7;
        held += *l->err == (r & 7);
        /* and errno as libc sets it */
        if (r % 100 == 0 && close(-1) == -1)
            held += errno == EBADF && *l->err == EBADF;
    }
    printf("%lu %d\n", x, held);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 100_000), ("aarch64,x86_64", 150_000)],
    );
}

#[test]
fn signal_handlers_keep_their_alternate_stack() {
    // handler() is installed with SA_ONSTACK on a sigaltstack and counts
    // the calls that ran there; main raises the signal every 1000 rounds.
    // The registration is kernel state, which the restore did not make
    // again: after a migration the handler ran on the ordinary stack (50
    // of 200 calls on the alternate one).
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "altstack",
        r#"#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
static char *alt;
static volatile int on_alt, calls;
static void handler(int s) {
    char here;
    (void)s;
    calls++;
    on_alt += &here >= alt && &here < alt + 65536;
}
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    alt = malloc(65536);
    stack_t ss = {.ss_sp = alt, .ss_size = 65536};
    sigaltstack(&ss, 0);
    struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, 0);
    unsigned long x = 1;
    for (int r = 0; r < 200000; r++) {
        x = step(x);
        if (r % 1000 == 0)
            raise(SIGUSR1);
    }
    printf("%lu %d %d\n", x, calls, on_alt);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 100_000), ("aarch64,x86_64", 150_000)],
    );
}

#[test]
fn the_locale_and_limits_the_program_chose_survive_a_migration() {
    // main chooses C.UTF-8 and lowers its descriptor limit, computes, then
    // counts the characters of "été" and prints the limit. musl keeps the
    // locale in its per-variant state, and limits are the kernel's: a
    // restored program was back in "C" (MB_CUR_MAX 1, five characters),
    // with the default limits.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "locale",
        r#"#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <wchar.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    setlocale(LC_ALL, "C.UTF-8");
    struct rlimit rl = {64, 128};
    setrlimit(RLIMIT_NOFILE, &rl);
    unsigned long x = 1;
    for (int r = 0; r < 200000; r++)
        x = step(x);
    wchar_t w[8];
    size_t n = mbstowcs(w, "\xc3\xa9t\xc3\xa9", 8);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("%lu %d %zu %s %lu %lu\n", x & 1, (int)MB_CUR_MAX, n, setlocale(LC_CTYPE, 0),
           (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 100_000),
            ("aarch64,x86_64", 150_000),
            ("x86_64,x86_64", 50_000),
        ],
    );
}

#[test]
fn files_the_program_mapped_are_mapped_again_after_a_migration() {
    // walk() reads a file through a private and a shared read-only mapping
    // and writes what it computes through a shared writable mapping of
    // another; main prints a checksum of that file as read() finds it.
    // Read-only mappings (and anonymous memory made read-only) were left
    // out of the dump (SIGSEGV after the migration), and a shared one was
    // restored as anonymous memory: what the program wrote after the
    // migration never reached the file.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "mapped",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#define SIZE 65536
static __attribute__((noinline)) unsigned long walk(const unsigned char *in, unsigned char *out, unsigned long x) {
    for (int i = 0; i < SIZE; i += 64) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
        x += in[(i + (x >> 40)) % SIZE];
        out[i / 64] = (unsigned char)(x >> 56);
    }
    return x;
}
int main(void) {
    static unsigned char block[SIZE];
    for (int i = 0; i < SIZE; i++) block[i] = (unsigned char)(i * 7 + i / 255);
    int in = open("input.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int out = open("output.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (write(in, block, SIZE) != SIZE || ftruncate(out, SIZE) != 0) return 1;
    const unsigned char *priv = mmap(0, SIZE, PROT_READ, MAP_PRIVATE, in, 0);
    const unsigned char *shared = mmap(0, SIZE, PROT_READ, MAP_SHARED, in, 0);
    /* And a file removed once mapped: only its bytes can travel. */
    int gone = open("gone.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (write(gone, block, SIZE) != SIZE) return 3;
    const unsigned char *removed = mmap(0, SIZE, PROT_READ, MAP_PRIVATE, gone, 0);
    close(gone);
    unlink("gone.bin");
    unsigned char *w = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, out, 0);
    /* And a table built in anonymous memory, then made read-only. */
    unsigned char *table = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < SIZE; i++) table[i] = (unsigned char)(i * 13 + 5);
    mprotect(table, SIZE, PROT_READ);
    unsigned long x = 1;
    for (int r = 0; r < 300; r++)
        x = walk(r % 4 == 0 ? priv : r % 4 == 1 ? shared : r % 4 == 2 ? table : removed, w + (r % 64) * 1024, x);
    munmap(w, SIZE);
    unsigned long sum = 0;
    if (pread(out, block, SIZE, 0) != SIZE) return 2;
    for (int i = 0; i < SIZE; i++) sum = sum * 31 + block[i];
    printf("%lu %lu\n", x, sum);
    return 0;
}
"#,
    );
    migrates_in_callee(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 100_000),
            ("aarch64,x86_64", 200_000),
            ("x86_64,x86_64", 250_000),
        ],
    );
}

#[test]
fn descriptors_that_share_an_open_file_still_share_it_after_a_migration() {
    // A log written through a descriptor and its dup (as a program that
    // dup2s its log onto stderr does): one offset for both. Each was
    // reopened by path, with an offset of its own, so after a migration
    // the two overwrote each other's lines (594 of 2000 lines were left).
    // Two descriptors opened apart, at the same offset when the migration
    // comes, must stay apart.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "dup",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
static unsigned long checksum(const char *path, unsigned long *lines) {
    FILE *f = fopen(path, "r");
    unsigned long sum = 0;
    int ch;
    *lines = 0;
    while ((ch = fgetc(f)) != EOF) {
        sum = sum * 31 + (unsigned long)ch;
        *lines += ch == '\n';
    }
    fclose(f);
    return sum;
}
int main(void) {
    int log = open("log.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int copy = dup(log);
    int reader = open("log.txt", O_RDONLY);
    int one = open("apart.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int two = open("apart.txt", O_WRONLY);
    unsigned long x = 1;
    char line[64];
    for (int r = 0; r < 2000; r++) {
        x = step(x);
        int n = snprintf(line, sizeof line, "%d %lu\n", r, x >> 40);
        if (write(r % 2 ? log : copy, line, n) != n) return 1;
    }
    char head[16];
    ssize_t got = read(reader, head, 10);
    if (write(one, "first\n", 6) != 6 || write(two, "2nd\n", 4) != 4) return 2;
    unsigned long lines, apart_lines;
    unsigned long sum = checksum("log.txt", &lines), apart = checksum("apart.txt", &apart_lines);
    printf("%lu lines %lu, read %ld at %ld, apart %lu %lu\n", lines, sum, (long)got,
           (long)lseek(reader, 0, SEEK_CUR), apart_lines, apart);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 1_500),
            ("x86_64,x86_64", 500),
        ],
    );
}

#[test]
fn a_file_lock_and_the_process_name_stay_with_the_program() {
    // A single-instance lock (flock on a lock file) and the name the
    // program gave itself. The destination reopened the file by path,
    // without the lock, so after a migration another open of the file took
    // it at once; and the name came back as the destination's own
    // ("qemu-aarch64" under qemu, the file's name natively).
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "locked",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
int main(void) {
    int fd = open("instance.lock", O_RDWR | O_CREAT, 0644);
    if (flock(fd, LOCK_EX | LOCK_NB)) return 1;
    prctl(PR_SET_NAME, "worker-7");
    unsigned long x = 1;
    for (int r = 0; r < 2000; r++)
        x = step(x);
    /* A second instance would open the file and try the lock. */
    int other = open("instance.lock", O_RDWR);
    int taken = flock(other, LOCK_EX | LOCK_NB) != 0;
    char name[17] = {0};
    prctl(PR_GET_NAME, name);
    printf("%lu lock still held: %d, name %s\n", x & 0xffff, taken, name);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 1_500),
            ("x86_64,x86_64", 500),
        ],
    );
}

#[test]
fn cpu_clocks_go_on_from_the_source_s_after_a_migration() {
    // CPU time measured across a migration (clock(), Lua's os.clock,
    // getrusage for a progress report): the destination is a new process
    // whose CPU clocks started at 0, so the program saw its CPU time go
    // backwards. Each clock must read at least what it read before.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "cputime",
        r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <time.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
static long ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
static long usage_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}
static long ticks(void) {
    struct tms t;
    times(&t);
    return t.tms_utime + t.tms_stime;
}
int main(void) {
    /* CPU time first, in libc (no migration points): more than a new
     * process uses to get going. */
    size_t size = 64u << 20;
    unsigned char *big = malloc(size);
    for (int i = 0; i < 12; i++) {
        memset(big, i, size);
        __asm__ volatile("" : : "r"(big) : "memory");
    }
    unsigned long x = big[size - 1];
    free(big);
    clock_t c0 = clock();
    long p0 = ns(CLOCK_PROCESS_CPUTIME_ID), t0 = ns(CLOCK_THREAD_CPUTIME_ID), u0 = usage_us(), k0 = ticks();
    for (int r = 0; r < 2000; r++)
        x = step(x);
    clock_t c1 = clock();
    long p1 = ns(CLOCK_PROCESS_CPUTIME_ID), t1 = ns(CLOCK_THREAD_CPUTIME_ID), u1 = usage_us(), k1 = ticks();
    printf("%lu went on: clock %d process %d thread %d rusage %d times %d\n", x & 0xff, c1 >= c0, p1 >= p0,
           t1 >= t0, u1 >= u0, k1 >= k0);
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    assert_eq!(
        String::from_utf8_lossy(&want.stdout)
            .split_once(' ')
            .unwrap()
            .1,
        "went on: clock 1 process 1 thread 1 rusage 1 times 1\n"
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 1_500),
            ("x86_64,x86_64", 500),
        ],
    );
}

#[test]
fn shared_memory_stays_shared_after_a_migration() {
    // MAP_SHARED memory no path maps again: anonymous (a child forked
    // later writes its result there) and a memfd the program still reads
    // and writes through its descriptor, mapped twice (a read-write and a
    // read-only view, as JITs do). Each came back as private memory, so
    // the child's result, the descriptor's view and the second mapping
    // all parted from what the program wrote.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "shared",
        r#"#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
int main(void) {
    volatile unsigned long *result = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int fd = memfd_create("table", 0);
    if (ftruncate(fd, 8192)) return 1;
    unsigned char *rw = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const volatile unsigned char *ro = mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0);
    unsigned long x = 1, seen = 0;
    for (int r = 0; r < 2000; r++) {
        x = step(x);
        rw[r * 4 % 8192] = (unsigned char)x;
        seen = seen * 31 + ro[r * 4 % 8192];
    }
    pid_t c = fork();
    if (c == 0) {
        result[0] = x % 1000 + 1;
        _exit(0);
    }
    waitpid(c, 0, 0);
    unsigned char back[8192];
    if (pread(fd, back, sizeof back, 0) != sizeof back) return 2;
    unsigned long sum = 0;
    for (int i = 0; i < 8192; i++)
        sum = sum * 31 + back[i];
    printf("child %lu, descriptor %lu, views %lu\n", result[0], sum, seen);
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 1_500),
            ("x86_64,x86_64", 500),
        ],
    );
}

#[test]
fn a_program_that_gave_up_root_migrates_and_stays_the_user_it_became() {
    // A server started as root that drops to another user (and sets
    // no_new_privs). It could not migrate at all (its dump could not be
    // created in hcontainer's directory: "cannot write the dump"), and a
    // destination would have run as root again. Now it dumps into a file
    // it opened while root, and the destination becomes that user after
    // its restore. (hcontainer's tests run as root, as its setup does.)
    assert_eq!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc_geteuid() },
        0,
        "this test needs root (scripts/test.sh runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "dropped",
        r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
int main(void) {
    gid_t one = 65533;
    if (setgroups(1, &one) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) return 1;
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    unsigned long x = 1;
    for (int r = 0; r < 2000; r++)
        x = step(x);
    uid_t u[3];
    gid_t g[3], groups[4];
    getresuid(&u[0], &u[1], &u[2]);
    getresgid(&g[0], &g[1], &g[2]);
    int n = getgroups(4, groups);
    printf("%lu uid %d %d %d gid %d %d %d groups %d:%d no_new_privs %d root again %d shadow %d\n", x & 0xff,
           (int)u[0], (int)u[1], (int)u[2], (int)g[0], (int)g[1], (int)g[2], n, n > 0 ? (int)groups[0] : -1,
           prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), setuid(0) == 0, open("/etc/shadow", O_RDONLY) >= 0);
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    assert!(
        String::from_utf8_lossy(&want.stdout).contains(
            "uid 65534 65534 65534 gid 65534 65534 65534 groups 1:65533 no_new_privs 1 root again 0"
        ),
        "{}",
        String::from_utf8_lossy(&want.stdout)
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 1_500),
            ("x86_64,x86_64", 500),
        ],
    );
    let pong = run_migrating(&app, &ping_pong("x86_64", 4), 400, dir.path());
    assert_same(&want, &pong, "four hops as the user it became");
    assert_eq!(pong.migrations().len(), 4, "{}", pong.stderr);
}

#[test]
fn scheduling_and_kernel_attributes_survive_a_migration() {
    // A batch job that niced itself and asked for SCHED_BATCH came back at
    // nice 0 and SCHED_OTHER after a migration; a worker that asked for
    // SIGTERM when its parent dies, made itself undumpable, a subreaper,
    // an OOM victim first, pinned itself to a CPU, set its timer slack or
    // left its terminal's session (setsid) lost each of those. The
    // destination now takes them all on.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "attrs",
        r#"#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
static int with_reaper;
static void show(const char *when) {
    int pdeath = -1, reaper = 0;
    prctl(PR_GET_PDEATHSIG, &pdeath);
    if (with_reaper) prctl(PR_GET_CHILD_SUBREAPER, &reaper);
    char oom[16] = {0};
    int fd = open("/proc/self/oom_score_adj", O_RDONLY);
    if (fd < 0 || read(fd, oom, sizeof oom - 1) <= 0) oom[0] = '?';
    close(fd);
    for (char *c = oom; *c; c++)
        if (*c == '\n') *c = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    printf("%s: nice %d policy %ld pdeathsig %d dumpable %d subreaper %d oom_score_adj %s cpus %d (cpu0 %d) "
           "timerslack %d session leader %d\n",
           when, getpriority(PRIO_PROCESS, 0), syscall(SYS_sched_getscheduler, 0), pdeath,
           prctl(PR_GET_DUMPABLE), reaper, oom, CPU_COUNT(&set), CPU_ISSET(0, &set), prctl(PR_GET_TIMERSLACK),
           getsid(0) == getpid());
}
int main(int argc, char **argv) {
    (void)argv;
    with_reaper = argc > 1;
    struct sched_param sp = {0};
    if (syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp)) return 1;
    setpriority(PRIO_PROCESS, 0, 7);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    prctl(PR_SET_DUMPABLE, 0);
    if (with_reaper) prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_TIMERSLACK, 123456);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, "300\n", 4) != 4) return 2;
    close(fd);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (sched_setaffinity(0, sizeof set, &set)) return 3;
    if (setsid() < 0) return 4;
    show("set");
    unsigned long x = 1;
    for (int r = 0; r < 2000; r++)
        x = step(x);
    show("now");
    printf("%lu\n", x & 0xff);
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    let text = String::from_utf8_lossy(&want.stdout).into_owned();
    let line = "nice 7 policy 3 pdeathsig 15 dumpable 0 subreaper 0 oom_score_adj 300 cpus 1 (cpu0 1) timerslack 123456 session leader 1";
    assert!(
        text.contains(&format!("set: {line}")) && text.contains(&format!("now: {line}")),
        "{text}"
    );
    // A child subreaper, between x86_64 processes: qemu-user refuses the
    // flag to an aarch64 guest, as it would to the program itself.
    let reaper = native(&app, &["reaper"], dir.path());
    assert!(
        String::from_utf8_lossy(&reaper.stdout)
            .contains("now: nice 7 policy 3 pdeathsig 15 dumpable 0 subreaper 1"),
        "{}",
        String::from_utf8_lossy(&reaper.stdout)
    );
    let got = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,x86_64",
            "--at-point",
            "1000",
            app.to_str().unwrap(),
            "reaper",
        ],
        dir.path(),
    );
    assert_same(&reaper, &got, "a subreaper");
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 1_000), ("aarch64,x86_64", 1_500)],
    );
    let pong = run_migrating(&app, &ping_pong("x86_64", 3), 400, dir.path());
    assert_same(&want, &pong, "three hops");
    assert_eq!(pong.migrations().len(), 3, "{}", pong.stderr);
}

#[test]
fn a_directory_being_read_is_read_on_where_it_stood() {
    // A program walking a directory (opendir, readdir) across a migration.
    // Between x86_64 processes the destination read the directory from its
    // start again (its offset was not restored: 387 entries of 302); to
    // aarch64 it could not migrate at all (x86_64's O_DIRECTORY is
    // aarch64's O_DIRECT: "cannot reopen the file").
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "walk",
        r#"#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
    }
    return x;
}
int main(void) {
    mkdir("entries", 0755);
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "entries/file-%03d", i);
        close(open(name, O_CREAT | O_WRONLY, 0644));
    }
    DIR *d = opendir("entries");
    struct dirent *e;
    int n = 0;
    unsigned long sum = 0, x = 1;
    while ((e = readdir(d))) {
        unsigned long h = 5381;
        for (const char *c = e->d_name; *c; c++)
            h = h * 33 + (unsigned char)*c;
        sum += h;
        n++;
        for (int i = 0; i < 20; i++)
            x = step(x);
    }
    closedir(d);
    printf("%d entries, %lu, %lu\n", n, sum, x & 0xff);
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    assert!(
        String::from_utf8_lossy(&want.stdout).starts_with("302 entries"),
        "{:?}",
        want
    );
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,x86_64", 2_000),
            ("x86_64,aarch64", 1_000),
            ("aarch64,x86_64", 3_000),
        ],
    );
    let pong = run_migrating(&app, &ping_pong("x86_64", 4), 700, dir.path());
    assert_same(&want, &pong, "four hops");
    assert_eq!(pong.migrations().len(), 4, "{}", pong.stderr);
}

#[test]
fn sleeps_last_as_long_as_asked_when_a_migration_is_requested_meanwhile() {
    // hcontainer's request signal interrupted sleeps: sleep(1) returned
    // after 0.4 s and told the program it had slept in full, and a program
    // ticking with usleep ticked early at every request. A sleep now goes
    // on to its end, and the program migrates right after it.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "ticks",
        r#"#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000ll + t.tv_nsec / 1000;
}
int main(int argc, char **argv) {
    (void)argv;
    int short_sleeps = 0, n = 2 + argc;
    for (int i = 0; i < n; i++) {
        struct timespec d = {0, 250000000}, rem = {0};
        long long t0 = now_us();
        int r = 0;
        switch (i % 3) {
        case 0: r = usleep(250000); break;
        case 1: r = nanosleep(&d, &rem); break;
        case 2: r = clock_nanosleep(CLOCK_MONOTONIC, 0, &d, &rem); break;
        }
        long long took = now_us() - t0;
        if (took < 250000 || r != 0) short_sleeps++;
    }
    printf("%d sleeps, %d cut short\n", n, short_sleeps);
    return 0;
}
"#,
    );
    let want = native(&app, &["a", "b", "c"], dir.path());
    assert_eq!(
        want.stdout_str(),
        "6 sleeps, 0 cut short\n",
        "{}",
        want.stderr
    );
    let got = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--every",
            "100ms",
            app.to_str().unwrap(),
            "a",
            "b",
            "c",
        ],
        dir.path(),
    );
    assert_same(&want, &got, "requests during sleeps");
    assert_eq!(got.migrations().len(), 2, "{}", got.stderr);
}

#[test]
fn structs_passed_by_value_migrate() {
    // x86_64 copies a large struct argument into the callee's argument
    // area, aarch64 passes the address of a copy in the caller's frame: the
    // callers' frames differed by a slot per such call, so consensus left
    // them unmigratable (lz4's compressor, on the stack for the whole run,
    // never migrated). A file's own functions now pass such structs alike
    // on both ISAs; the callee still works on a copy of its own.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "byvalue",
        r#"#include <stdio.h>
#include <string.h>
typedef struct {
    char name[40];
    long n;
    double w;
} Item;
static volatile unsigned long sink;
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 200; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        sink = x;
    }
    return x;
}
static __attribute__((noinline)) Item make(int i) {
    Item r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "item-%d", i);
    r.n = i;
    r.w = i * 0.5;
    return r;
}
static __attribute__((noinline)) long work(Item r, int k, Item other) {
    unsigned long x = (unsigned long)r.n;
    for (int i = 0; i < k; i++)
        x = step(x);
    r.n += other.n; /* its own copy: the caller's stays */
    return (long)(x & 0xff) + r.n + (long)strlen(r.name);
}
static __attribute__((noinline)) void show(Item r, long t) { printf("%s %ld %.1f %ld\n", r.name, r.n, r.w, t); }
int main(void) {
    long t = 0;
    Item first = make(1000);
    for (int i = 0; i < 30; i++) {
        Item r = make(i);
        t += work(r, 200, first);
        show(r, t);
    }
    show(first, t);
    return 0;
}
"#,
    );
    sites_at_least(&app, 100.0);
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 700),
            ("aarch64,x86_64", 2_000),
            ("x86_64,aarch64", 4_500),
        ],
    );
    let want = native(&app, &[], dir.path());
    let pong = run_migrating(&app, &ping_pong("x86_64", 4), 900, dir.path());
    assert_same(&want, &pong, "four hops");
    assert_eq!(pong.migrations().len(), 4, "{}", pong.stderr);
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn reserved_address_space_is_still_reserved_after_a_migration() {
    // An arena: address space reserved with PROT_NONE and committed a
    // chunk at a time with mprotect. The dump left the reservation out, so
    // after a migration the next mprotect failed ("mprotect failed at
    // chunk 13").
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "arena",
        r#"#include <stdio.h>
#include <sys/mman.h>
static __attribute__((noinline)) unsigned long fill(unsigned long *p, int n, unsigned long x) {
    for (int i = 0; i < n; i++) {
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xf) == 3);
        p[i] = x;
    }
    return x;
}
int main(void) {
    size_t chunk = 1 << 16, total = 64 * chunk;
    char *arena = mmap(0, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    unsigned long x = 1, sum = 0;
    for (int c = 0; c < 64; c++) {
        if (mprotect(arena + c * chunk, chunk, PROT_READ | PROT_WRITE)) {
            printf("mprotect failed at chunk %d\n", c);
            return 1;
        }
        x = fill((unsigned long *)(arena + c * chunk), (int)(chunk / 8), x);
    }
    for (size_t i = 0; i < total / 8; i += 97)
        sum += ((unsigned long *)arena)[i];
    printf("%lu %lu\n", x, sum);
    return 0;
}
"#,
    );
    migrates_in_callee(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 100_000),
            ("aarch64,x86_64", 400_000),
            ("x86_64,x86_64", 500_000),
        ],
    );
}

/// Migrates `app` along each route at the given point, which must be in a
/// function main calls (two frames); the output must be the native run's.
fn migrates_in_callee(app: &Path, dir: &Path, points: &[(&str, u64)]) {
    migrates_deep(app, dir, points, 2)
}

/// Migrates `app` along each route at the given point, `frames` frames deep;
/// the output must be the native run's.
fn migrates_deep(app: &Path, dir: &Path, points: &[(&str, u64)], frames: usize) {
    for (m, (route, at)) in migrates_once(app, dir, points).iter().zip(points) {
        assert!(
            m.contains(&format!(" {frames} frames")),
            "{} {route} at {at}: expected a migration {frames} frames deep: {m}",
            app.display()
        );
    }
}

/// Builds `source` as `dir/name` with hcc and with plain clang: the hcc
/// build's native run must be plain clang's, byte for byte. Returns the
/// hcc build and its run.
fn runs_like_plain_clang(dir: &Path, name: &str, source: &str) -> (PathBuf, Run) {
    let app = compile_source(dir, name, source);
    let plain = dir.join(format!("{name}-plain"));
    plain_build(&dir.join(format!("{name}.c")), &plain);
    let (want, got) = (native(&plain, &[], dir), native(&app, &[], dir));
    assert_same(
        &want,
        &got,
        &format!("{name}: hcc's build against plain clang's"),
    );
    (app, got)
}

/// Migrates `app` along each route at the given point: the output must be
/// the native run's, with exactly one migration; returns each run's
/// report of it.
fn migrates_once(app: &Path, dir: &Path, points: &[(&str, u64)]) -> Vec<String> {
    let want = native(app, &[], dir);
    let mut out = Vec::new();
    for &(route, at) in points {
        let got = run_migrating(app, route, at, dir);
        let what = format!("{} {route} at {at}", app.display());
        assert_same(&want, &got, &what);
        let m = got.migrations();
        assert!(
            m.len() == 1,
            "{what}: expected one migration\n{}",
            got.stderr
        );
        out.push(m[0].to_string());
    }
    out
}

/// Disassembly of one function of an executable.
fn disassemble(exe: &Path, symbol: &str) -> String {
    let o = std::process::Command::new("llvm-objdump-22")
        .args(["-d", "--no-show-raw-insn"])
        .arg(format!("--disassemble-symbols={symbol}"))
        .arg(exe)
        .output()
        .expect("llvm-objdump-22 (installed with llvm-22 by scripts/setup.sh)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first instruction line of `disassemble`'s output (`addr: insn`).
fn first_instruction(code: &str) -> Option<&str> {
    code.lines().find(|l| {
        l.trim_start()
            .split_once(':')
            .is_some_and(|(a, _)| !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

/// The example and its aarch64 variant, extracted.
fn both_variants(name: &str, dir: &Path) -> [std::path::PathBuf; 2] {
    variants_of(&example(name), dir)
}

/// An executable and its aarch64 variant, extracted into `dir`.
fn variants_of(app: &Path, dir: &Path) -> [std::path::PathBuf; 2] {
    let name = app.file_name().unwrap().to_str().unwrap();
    let arm = dir.join(format!("{name}.aarch64"));
    assert_ok(
        &hcontainer(
            &[
                "extract",
                "--isa",
                "aarch64",
                app.to_str().unwrap(),
                "-o",
                arm.to_str().unwrap(),
            ],
            dir,
        ),
        "extract",
    );
    [app.to_path_buf(), arm]
}

#[test]
fn resume_paths_stay_out_of_the_code_that_runs() {
    // The code a program runs until it migrates is its own plus polls and
    // statepoints; restore dispatch and resume paths are in `<f>.hc.resume`,
    // where the entry poll forwards a restore (the migrations above go
    // through it).
    let dir = tempfile::tempdir().unwrap();
    for exe in both_variants("loops", dir.path()) {
        let own = disassemble(&exe, "main");
        let copy = disassemble(&exe, "main.hc.resume");
        for f in ["__hc_resume_take", "__hc_resume_site"] {
            assert!(
                !own.contains(f),
                "{}: main calls {f}:\n{own}",
                exe.display()
            );
            assert!(
                copy.contains(f),
                "{}: main.hc.resume never calls {f}",
                exe.display()
            );
        }
        assert!(
            own.contains("main.hc.resume"),
            "{}: main does not forward a restore to its copy",
            exe.display()
        );
    }
}

#[test]
fn loop_free_functions_have_redirected_entries() {
    // A function without loops has no entry poll: while a migration is
    // requested its entry is a jump to its copy (FORMATS §5 "Entries");
    // dispatch.c's `main` is one (the migrations above go through it).
    let dir = tempfile::tempdir().unwrap();
    for exe in both_variants("dispatch", dir.path()) {
        let own = disassemble(&exe, "main");
        // Nothing runs at the entry for it (x86_64: `nop; push` made one push).
        assert!(
            first_instruction(&own).is_some_and(|l| !l.contains("nop")),
            "{}: main starts with a no-op:\n{own}",
            exe.display()
        );
        assert!(
            !own.contains("main.hc.resume"),
            "{}: main polls at its entry:\n{own}",
            exe.display()
        );
        assert!(
            redirects(&exe).contains(&(address(&exe, "main"), address(&exe, "main.hc.resume"))),
            "{}: main's entry is not listed as redirected to its copy",
            exe.display()
        );
    }
}

fn address(exe: &Path, symbol: &str) -> u64 {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let found = file.symbols().find(|s| s.name() == Ok(symbol));
    found
        .unwrap_or_else(|| panic!("{}: no {symbol}", exe.display()))
        .address()
}

/// How many of the polls `__hc_polls` lists lie in function `symbol`
/// (FORMATS §5 "Polls").
fn polls_in(exe: &Path, symbol: &str) -> usize {
    use object::{Object, ObjectSection, ObjectSymbol};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let f = file
        .symbols()
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("{}: no {symbol}", exe.display()));
    let (lo, hi) = (f.address(), f.address() + f.size());
    let Some(sec) = file.section_by_name("__hc_polls") else {
        return 0;
    };
    let bytes = sec.data().unwrap();
    (0..bytes.len() / 8)
        .map(|k| {
            let rel = i32::from_le_bytes(bytes[8 * k..8 * k + 4].try_into().unwrap());
            (sec.address() + 8 * k as u64).wrapping_add_signed(rel.into())
        })
        .filter(|at| (lo..hi).contains(at))
        .count()
}

/// The (function, resume copy) pairs of `__hc_entries` (FORMATS §5 "Entries").
fn redirects(exe: &Path) -> Vec<(u64, u64)> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let Some(sec) = file.section_by_name("__hc_entries") else {
        return Vec::new();
    };
    let bytes = sec.data().unwrap();
    let field = |at: usize| {
        let rel = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        (sec.address() + at as u64).wrapping_add_signed(rel.into())
    };
    (0..bytes.len() / 8)
        .map(|k| (field(8 * k), field(8 * k + 4)))
        .collect()
}

#[test]
fn a_large_heap_migrates_while_its_dump_is_watched() {
    // 320 MiB of heap: the source announces its dump (`DUMPING`, from
    // 256 MiB) and hcontainer watches the file grow for its progress bar;
    // the program goes on on the other ISA with every block intact.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("heap");
    compile(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/workloads/heap.c"),
        &app,
    );
    let want = native(&app, &["320"], dir.path());
    // After the heap is built (under 100 points per 64 KiB block).
    let at = (1600 * 320 + 10_000).to_string();
    let got = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64",
            "--at-point",
            &at,
            app.to_str().unwrap(),
            "320",
        ],
        dir.path(),
    );
    assert_same(&want, &got, "heap 320 MiB, x86_64 -> aarch64");
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
    assert!(got.migrations()[0].contains("320."), "{}", got.stderr);
    assert!(!got.stderr.contains("unexpected message"), "{}", got.stderr);
}

#[test]
fn calls_through_old_style_declarations_agree_and_migrate() {
    // `long work();` (no prototype, as old C and autoconf's link tests
    // declare): x86_64 made such a call variadic (its ABI sets %al), aarch64
    // did not, so the variants disagreed and main could not migrate
    // (-Whc-mismatch). Now both call `work(long, long *)` alike, and a
    // migration inside work, called through that declaration from main,
    // carries main's frame too. The same for a call without arguments
    // through a pointer so declared (`long (*run)();`, gawk's extension
    // list in close_extensions): `(...)` on x86_64, `()` on aarch64.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "oldstyle",
        &["-Wno-deprecated-non-prototype"],
        &[
            (
                "main.c",
                r#"#include <stdio.h>
long work();
long tick();
char *getenv();
struct hook { struct hook *next; long (*run)(); };
int main(void) {
    long acc = getenv("HCONTAINER_NO_SUCH_VARIABLE") ? 1 : 7;
    for (long k = 1; k <= 30; k++) {
        long r = work(k * 10, &acc);
        if (k % 10 == 0) printf("%ld %ld %ld\n", k, r, acc);
    }
    struct hook last = {0, tick}, first = {&last, tick};
    long t = 0;
    for (int round = 0; round < 20; round++)
        for (struct hook *h = &first; h; h = h->next)
            t += h->run();
    printf("%ld\n", t);
    return 0;
}
"#,
            ),
            (
                "work.c",
                r#"static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
long work(long n, long *acc) {
    unsigned long x = (unsigned long)*acc;
    for (long i = 0; i < n; i++) x = step(x + (unsigned long)i);
    *acc = (long)(x >> 3);
    return (long)(x % 1000003);
}
static unsigned long state = 12345;
static __attribute__((noinline)) unsigned long churn(unsigned long x) {
    for (int i = 0; i < 20; i++) x = step(x + (unsigned long)i);
    return x;
}
long tick() {
    state = churn(state);
    return (long)(state % 1000);
}
"#,
            ),
        ],
    );
    sites_at_least(&app, 100.0);
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 2000), ("aarch64,x86_64", 3001)],
        3,
    );
    // In churn(), called by tick() through the hook pointer.
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 176_000), ("aarch64,x86_64", 174_000)],
        4,
    );
}

#[test]
fn arrays_get_one_alignment_so_string_compares_agree() {
    // clang aligns `char buf[32]` to 16 bytes on x86_64 and to 1 on
    // aarch64; `strcmp(buf, "abc") == 0` then became one 4-byte compare on
    // x86_64 and a bcmp call (a site) on aarch64, and classify() was left
    // uninstrumented (-Whc-mismatch). Now every variant gets x86_64's
    // alignment, the code agrees, and migrations inside step() carry
    // classify()'s frame with its buffer.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "compare",
        &[],
        &[(
            "compare.c",
            r#"#include <stdio.h>
#include <string.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
static const int weights[4] = {3, 1, 4, 1};
static __attribute__((noinline)) int classify(unsigned long v) {
    char buf[32];
    unsigned long x = step(v);
    snprintf(buf, sizeof buf, "%s", (x >> 9) % 3 == 0 ? "abc" : (x >> 9) % 3 == 1 ? "a" : "other");
    x = step(x);
    if (strcmp(buf, "abc") == 0) return 1 + (int)(x >> 11 & 1);
    if (strcmp(buf, "a") == 0) return 3;
    return weights[x >> 13 & 3];
}
int main(void) {
    long counts[5] = {0};
    for (unsigned long i = 0; i < 3000; i++) counts[classify(i)]++;
    printf("%ld %ld %ld %ld %ld\n", counts[0], counts[1], counts[2], counts[3], counts[4]);
    return 0;
}
"#,
        )],
    );
    sites_at_least(&app, 100.0);
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 1500), ("aarch64,x86_64", 4001)],
    );
}

#[test]
fn small_structs_passed_by_value_agree_and_migrate() {
    // `token` (a pointer and an unsigned) and `position` (a long and an
    // unsigned) passed by value: x86_64 passes them as two registers'
    // worth of pieces (i64 or ptr, i32), aarch64 as one [2 x i64] whose
    // second element the callee truncates. weigh's sites carried different
    // values on the two ISAs, and so did main's where add() was inlined
    // into it (sed's dfa.c, sqlite3's Token): both were left
    // uninstrumented (-Whc-mismatch). Now such a static function takes the
    // address of a copy in its caller's frame on every ISA. Migrations in
    // note (position p live in main across the call) and in weigh (token t
    // read from main's copy after the call) carry the structs.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "structs",
        &[],
        &[(
            "structs.c",
            r#"#include <stdio.h>
typedef struct { const char *text; unsigned len; } token;
typedef struct { long index; unsigned flags; } position;
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
static unsigned long seen;
static __attribute__((noinline)) void note(long n) { seen = step(seen + (unsigned long)n); }
static __attribute__((noinline)) unsigned long weigh(token t, unsigned long x) {
    x = step(x + t.len);
    for (unsigned i = 0; i < t.len; i++) x = x * 31 + (unsigned char)t.text[i];
    return step(x) ^ t.len;
}
static void add(position p, position *set, long *n) {
    for (long i = 0; i < *n; i++)
        if (set[i].index == p.index) {
            set[i].flags |= p.flags;
            return;
        }
    note(*n);
    set[(*n)++] = p;
}
int main(void) {
    static const char *words[] = {"alpha", "be", "gamma", "delta", "epsilon"};
    position set[64];
    long n = 0;
    unsigned long x = 7;
    for (unsigned long i = 0; i < 900; i++) {
        token t = {words[i % 5], (unsigned)(2 + i % 4)};
        x = weigh(t, x);
        position p = {(long)((x >> 7) % 50), 1u << (i % 7)};
        add(p, set, &n);
    }
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) sum = sum * 31 + (unsigned long)set[i].index * 7 + set[i].flags;
    printf("%ld %lu %lu %lu\n", n, sum, x, seen);
    return 0;
}
"#,
        )],
    );
    sites_at_least(&app, 100.0);
    // 113 and 117: in note, called from main (the first new position);
    // 1500 and 1501: in weigh.
    migrates_deep(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 113),
            ("aarch64,x86_64", 117),
            ("x86_64,aarch64", 1500),
            ("aarch64,x86_64", 1501),
        ],
        3,
    );
}

#[test]
fn external_functions_taking_structs_by_value_agree_and_migrate() {
    // `push(entry)` (16 bytes: (i32, i64) on x86_64, [2 x i64] on aarch64)
    // and `mix(config, ...)` (40 bytes: byval on x86_64, the address of
    // the caller's copy on aarch64) are external: other files call them
    // (here main, directly and through pointers), so their ABI stays. bc's
    // dc (`dc_push(dc_data)` inlined into three functions of its file) and
    // lz4's frame API were left unmigratable (-Whc-mismatch): only
    // internal functions took structs alike on both ISAs. Their bodies now
    // move to internal functions that this file calls; the external
    // symbols become wrappers that copy the struct into their own frame.
    // main's calls copy theirs as aarch64's do. A migration inside the
    // first call, made through a pointer (main -> mix's wrapper -> its
    // body -> step), and later ones inside fill, keep the output: x86_64's
    // byval argument area is never what the body reads after a restore.
    let dir = tempfile::tempdir().unwrap();
    const TYPES: &str = r#"
typedef struct { int kind; long value; } entry;
typedef struct { long seed; long rounds; char tag[24]; } config;
unsigned long step(unsigned long x);
void push(entry e);
long pop_sum(void);
unsigned long mix(config c, unsigned long x);
void fill(int n, config c);
"#;
    let lib = format!(
        "#include <stdio.h>\n#include <stdlib.h>\n{TYPES}{}",
        r#"
static entry stack[256];
static int top;
__attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
void push(entry e) {
    if (e.kind != 1 && e.kind != 2) {
        fprintf(stderr, "bad entry kind %d\n", e.kind);
        abort();
    }
    stack[top++ & 255] = e;
}
long pop_sum(void) {
    long s = 0;
    while (top > 0) s = s * 3 + stack[--top & 255].value;
    return s;
}
unsigned long mix(config c, unsigned long x) {
    for (long i = 0; i < c.rounds; i++) x = step(x ^ (unsigned long)c.seed) + (unsigned char)c.tag[i % 24];
    c.seed = 0; /* its own copy: the caller's stays */
    return x;
}
void fill(int n, config c) {
    for (int i = 0; i < n; i++) {
        entry e = {1 + (i & 1), (long)(mix(c, (unsigned long)i) % 1000)};
        push(e);
    }
}
"#
    );
    let main = format!(
        "#include <stdio.h>\n{TYPES}{}",
        r#"
int main(void) {
    config c = {12345, 40, "external-by-value"};
    unsigned long (*m)(config, unsigned long) = mix;
    void (*p)(entry) = push;
    config big = c;
    big.rounds = 3000;
    unsigned long first = m(big, 1);
    long total = (long)(first % 1000);
    for (int round = 0; round < 6; round++) {
        fill(20, c);
        entry e = {2, (long)(m(c, (unsigned long)round) % 777)};
        p(e);
        push((entry){1, round});
        total = total * 7 + pop_sum();
        c.rounds += 3;
        printf("round %d: %ld seed %ld %ld\n", round, total % 1000003, c.seed, big.seed);
    }
    printf("%s %d\n", p == push ? "same" : "different", m == mix);
    return 0;
}
"#
    );
    let app = compile_without_mismatches(
        dir.path(),
        "byvalue-external",
        &[],
        &[("lib.c", &lib), ("main.c", &main)],
    );
    sites_at_least(&app, 100.0);
    // Its address is the wrapper's, the same in every file.
    let out = native(&app, &[], dir.path()).stdout_str();
    assert!(out.ends_with("same 1\n"), "{out}");
    migrates_deep(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 300),
            ("aarch64,x86_64", 2900),
            ("x86_64,aarch64", 5000),
            ("aarch64,x86_64", 5000),
        ],
        4,
    );
}

#[test]
fn a_struct_copy_for_a_call_sits_where_clang_puts_aarch64s() {
    // x86_64's copy of a struct passed by value to a file's own function
    // goes among the caller's stack slots where clang puts aarch64's (the
    // variants' slots pair up in order). It went before the first slot used
    // after the call, and clang's first slot, the return value's, is used
    // last: scan's two `mark` copies came before its `string` local on
    // x86_64 and after it on aarch64, the slots paired as different types,
    // and the sites after the loop were lost (libyaml's scanner and parser:
    // 39 of 811 sites; here 4 of 11).
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "slotorder",
        &[],
        &[(
            "slotorder.c",
            r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct { size_t index, line, column; } mark;
typedef struct { char *start, *end, *pointer; } string;
static unsigned long sink;
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
static __attribute__((noinline)) int report(const char *what, mark m) {
    sink = step(sink + m.line);
    printf("%s at %zu:%zu\n", what, m.line, m.column);
    return m.index == 999;
}
static __attribute__((noinline)) int scan(const char *text, mark start, char **out) {
    size_t length = strlen(text);
    string s = {0, 0, 0};
    char buf[64];
    s.start = buf;
    s.end = buf + sizeof buf;
    s.pointer = buf;
    for (size_t i = 0; i < length && s.pointer < s.end - 1; i++) {
        if (text[i] == '!') {
            start.column = i;
            if (report("bang", start))
                return 0;
        }
        *s.pointer++ = text[i];
        sink = step(sink ^ i);
    }
    *s.pointer = 0;
    *out = strdup(s.start);
    return 1;
}
int main(void) {
    static const char *lines[] = {"plain", "one!", "!two!!", "three!!!x", "no bang here"};
    for (int r = 0; r < 40; r++) {
        char *out = 0;
        mark m = {(size_t)r, (size_t)(r + 1), 0};
        if (scan(lines[r % 5], m, &out)) {
            printf("%d %s %lu\n", r, out, sink % 1000);
            free(out);
        }
    }
    return 0;
}
"#,
        )],
    );
    sites_at_least(&app, 100.0);
    // 215: in report, called from scan's loop; 700: in scan's own step.
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 215),
            ("aarch64,x86_64", 215),
            ("x86_64,aarch64", 700),
            ("aarch64,x86_64", 700),
        ],
    );
}

#[test]
fn values_loaded_from_constants_are_reloaded_not_carried() {
    // `motto` and `limits` are constants defined in another file: main
    // loads them once, before its loop, and uses them after every call.
    // Carried in the frame record, such a value took a deopt operand at
    // every site, which the code generator made again before each call
    // (`movq stderr, %r15` before every mainGtU call in bzip2's block
    // sort: 1.4 M instructions). Now a resume loads them again, so main's
    // record holds only x and k; migrations at sites inside step, both
    // ways, must still print the constants' values.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "constants",
        &[],
        &[
            (
                "main.c",
                r#"#include <stdio.h>
extern const char *const motto;
extern const long limits[4];
unsigned long step(unsigned long x);
int main(void) {
    const char *m = motto;
    long lo = limits[1], hi = limits[3];
    unsigned long x = 5;
    for (long k = 1; k <= 40; k++) {
        x = step(x + (unsigned long)k);
        long v = (long)(x % 1000);
        if (k % 8 == 0) printf("%s %ld %ld\n", m, v < lo ? lo : v > hi ? hi : v, k);
    }
    printf("%s done\n", m);
    return 0;
}
"#,
            ),
            (
                "other.c",
                r#"const char *const motto = "steady";
const long limits[4] = {0, 100, 500, 900};
unsigned long step(unsigned long x) {
    for (int i = 0; i < 40; i++) {
        x |= 1;
        do
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        while ((x & 0xff) != 0x5a);
    }
    return x;
}
"#,
            ),
        ],
    );
    migrates_deep(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 100),
            ("aarch64,x86_64", 101),
            ("x86_64,aarch64", 333),
            ("aarch64,x86_64", 334),
        ],
        2,
    );
    let keep = run_keeping(&app, "x86_64,aarch64", 333, dir.path());
    let snap = std::fs::read_dir(&keep)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .expect("a kept snapshot");
    let shown = hcontainer(&["show", snap.to_str().unwrap()], dir.path());
    assert_ok(&shown, "hcontainer show");
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let main_bytes = v["frames"][0]["values"].as_u64().expect("main's frame");
    assert!(
        main_bytes <= 16,
        "main carries {main_bytes} bytes of values; x and k are 16, the constants are loaded again"
    );
}

#[test]
fn structs_holding_nlink_t_and_blksize_t_read_alike_after_a_migration() {
    // musl makes nlink_t and blksize_t int-sized on aarch64 and long on
    // x86_64, so a struct holding one had another layout on each ISA: GNU
    // tar's hard-link table entries ({dev_t, ino_t, nlink_t, name}) written
    // on one ISA read back with the name shifted by 4 bytes and nlink
    // mixed with the name's first bytes on the other. hcc's bits/alltypes.h
    // gives both the long width on every ISA, as its struct stat does.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "links",
        &[],
        &[(
            "links.c",
            r#"#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
struct link { dev_t dev; ino_t ino; nlink_t nlink; char name[1]; };
struct hint { blksize_t block; int tag; };
static struct link *table[40];
static struct hint *hints;
static unsigned long sink;
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
int main(void) {
    hints = malloc(40 * sizeof *hints);
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "dir/file-%02d", i);
        struct link *l = malloc(offsetof(struct link, name) + strlen(name) + 1);
        l->dev = 2049;
        l->ino = 1000 + i;
        l->nlink = (nlink_t)(i % 3 + 1);
        strcpy(l->name, name);
        table[i] = l;
        hints[i].block = 512 << (i % 4);
        hints[i].tag = -i;
        sink = step(sink + i);
    }
    for (int i = 0; i < 40; i++) {
        struct link *l = table[i];
        sink = step(sink ^ l->ino);
        printf("%s %lu %lu %lu %ld %d %lu\n", l->name, (unsigned long)l->dev,
               (unsigned long)l->ino, (unsigned long)l->nlink, (long)hints[i].block,
               hints[i].tag, sink % 1000);
    }
    return 0;
}
"#,
        )],
    );
    sites_at_least(&app, 100.0);
    let want = native(&app, &[], dir.path());
    let got = hcontainer(
        &["run", "--isa", "aarch64", app.to_str().unwrap()],
        dir.path(),
    );
    assert_same(&want, &got, "links on aarch64");
    // 20: the table half written; 60: half read.
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 20),
            ("aarch64,x86_64", 20),
            ("x86_64,aarch64", 60),
            ("aarch64,x86_64", 60),
        ],
    );
}

#[test]
fn a_struct_passed_in_registers_is_built_where_it_is_passed() {
    // `cmp` is an inline definition (available_externally) taking structs
    // by value: aarch64 passes `[2 x i64]`, x86_64 two i64. The optimizer
    // hoisted the first link of aarch64's `insertvalue` chain for `show(t)`
    // above the `now` call, so a half-built aggregate was live there on
    // aarch64 only, the sites' values differed and `check` could not
    // migrate (GNU tar's check_time with gnulib's timespec_cmp). hcc now
    // builds such a chain again right before its use.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "spans",
        &[],
        &[
            (
                "spans.c",
                r#"#include <stdio.h>
struct span { long sec, nsec; };
extern struct span started;
const char *show(struct span s);
void now(struct span *s);
__attribute__((noinline)) unsigned long step(unsigned long x) {
    x |= 1;
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xff) != 0x5a);
    return x;
}
inline int cmp(struct span a, struct span b) {
    return 2 * ((a.sec > b.sec) - (a.sec < b.sec)) + ((a.nsec > b.nsec) - (a.nsec < b.nsec));
}
static __attribute__((noinline)) void check(const char *name, struct span t) {
    if (t.sec < 0)
        printf("%s: old %s\n", name, show(t));
    else if (cmp(started, t) < 0) {
        struct span n;
        now(&n);
        if (cmp(n, t) < 0)
            printf("%s: future %s\n", name, show(t));
    }
}
int main(void) {
    for (int r = 0; r < 60; r++) {
        struct span t = {(long)(r % 7) - 2, r * 1000};
        check(r % 2 ? "odd" : "even", t);
        printf("%d\n", r);
    }
    return 0;
}
"#,
            ),
            (
                "clock.c",
                r#"#include <stdio.h>
struct span { long sec, nsec; };
struct span started = {1, 500};
unsigned long step(unsigned long x);
static char buf[64];
static unsigned long ticks;
void now(struct span *s) { ticks = step(ticks); s->sec = 2; s->nsec = (long)(ticks % 1000); }
const char *show(struct span s) { ticks = step(ticks + 1); snprintf(buf, sizeof buf, "%ld.%06ld", s.sec, s.nsec); return buf; }
int cmp(struct span a, struct span b) {
    return 2 * ((a.sec > b.sec) - (a.sec < b.sec)) + ((a.nsec > b.nsec) - (a.nsec < b.nsec));
}
"#,
            ),
        ],
    );
    sites_at_least(&app, 100.0);
    // 50: in `step` under `now` under `check` (5 frames); 150, 300 later.
    migrates_once(
        &app,
        dir.path(),
        &[
            ("x86_64,aarch64", 50),
            ("aarch64,x86_64", 50),
            ("x86_64,aarch64", 150),
            ("aarch64,x86_64", 300),
        ],
    );
}

/// Writes `sources` into `dir` and builds them into one program with
/// `hcc -O2 -Wall FLAGS`, which must succeed with no -Whc-mismatch warning
/// (every function agreed on by both ISAs).
fn compile_without_mismatches(
    dir: &Path,
    name: &str,
    flags: &[&str],
    sources: &[(&str, &str)],
) -> std::path::PathBuf {
    let app = dir.join(name);
    let mut cmd = std::process::Command::new(tool("hcc"));
    cmd.args(["-O2", "-Wall"]).args(flags).arg("-o").arg(&app);
    for (file, text) in sources {
        std::fs::write(dir.join(file), text).unwrap();
        cmd.arg(dir.join(file));
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.contains("Whc-mismatch"), "{stderr}");
    app
}

#[test]
fn constructors_and_destructors_run_in_order_and_after_a_migration() {
    // A target machine made through LLVM-C put constructors into `.ctors`,
    // which musl never runs and hld could not place: any
    // `__attribute__((constructor))` failed to link. They go into
    // `.init_array` (priorities first, in order), destructors into
    // `.fini_array`, and those of a migrated program run on the destination.
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = runs_like_plain_clang(
        dir.path(),
        "ctors",
        r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char order[32];
static unsigned long sum;
static void note(char c) { order[strlen(order)] = c; }
// getenv keeps each from being evaluated at compile time.
__attribute__((constructor(101))) static void early(void) {
    note(getenv("HC_CTORS_UNSET") ? '?' : '1');
}
__attribute__((constructor)) static void plain(void) {
    note(getenv("HC_CTORS_UNSET") ? '?' : 'P');
}
__attribute__((constructor(200))) static void middle(void) {
    note(getenv("HC_CTORS_UNSET") ? '?' : '2');
}
static void at_exit(void) { printf("atexit: sum %lu\n", sum); }
__attribute__((constructor)) static void registers(void) { atexit(at_exit); note('A'); }
__attribute__((destructor)) static void done(void) {
    printf("destructor: order %s, sum %lu\n", order, sum);
}
__attribute__((noinline)) static unsigned long step(unsigned long x) {
    for (int i = 0; i < 8; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x >> 7;
}
int main(void) {
    printf("main: order %s\n", order);
    note('M');
    for (int i = 0; i < 3000; i++) {
        sum += step(i) & 0xffff;
        if (i % 1000 == 0) printf("%d %lu\n", i, sum);
    }
    return 0;
}
"#,
    );
    migrates_once(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 150), ("aarch64,x86_64", 300)],
    );
}

#[test]
fn small_structs_returned_by_value_agree_and_migrate() {
    // `fp` (a 64-bit and a 32-bit field) returned by value leaves mul as
    // { i64, i32 } on x86_64 and [2 x i64] on aarch64; inlined, work
    // carried the 64-bit element on one ISA and the field on the other, and
    // consensus gave it up (mujs's `js_grisu2`, 4 sites). A static function
    // now writes such a struct into its caller's temporary, on every ISA.
    // Migrations inside collatz, called by mul while work waits for its
    // result: four frames, the temporary in work's frame.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "returned",
        &[],
        &[(
            "returned.c",
            r#"#include <stdio.h>
#include <stdlib.h>
typedef struct { unsigned long long f; int e; } fp;
typedef struct { int a, b; } pair;
__attribute__((noinline)) static int collatz(unsigned long long v) {
    int n = 0;
    while (v > 1) { v = (v & 1) ? 3 * v + 1 : v / 2; n++; }
    return n;
}
__attribute__((noinline)) static fp mul(fp x, fp y) {
    fp r;
    r.e = collatz((x.f & 1023) + 7);
    r.f = x.f * y.f + 1;
    r.e += x.e + y.e + 1;
    for (int j = 0; j < (int)(x.f & 3) + 1; j++) r.f ^= r.f >> (7 + j);
    return r;
}
static fp norm(fp in) { while (!(in.f >> 60)) { in.f <<= 1; in.e--; } return in; }
static pair swap(pair p) { pair q = { p.b, p.a + 1 }; return q; }
static fp pick(int c, fp a, fp b) { if (c) return a; return b; }
__attribute__((noinline)) static long work(int n) {
    fp acc = { 3, 1 }, k = { 5, 2 };
    pair p = { 1, 2 };
    long s = 0;
    for (int i = 0; i < n; i++) {
        acc = norm(mul(acc, k));
        p = swap(p);
        fp c = pick(i & 1, acc, k);
        s += (long)(acc.f >> 40) + acc.e + p.a + c.e;
        if (i % 500 == 0) printf("%d %llu %d %d %ld\n", i, acc.f, acc.e, p.b, s);
    }
    return s;
}
int main(int argc, char **argv) {
    printf("%ld\n", work(argc > 1 ? atoi(argv[1]) : 3000));
    return 0;
}
"#,
        )],
    );
    sites_at_least(&app, 100.0);
    let plain = dir.path().join("returned-plain");
    plain_build(&dir.path().join("returned.c"), &plain);
    assert_same(
        &native(&plain, &[], dir.path()),
        &native(&app, &[], dir.path()),
        "hcc's build against plain clang's",
    );
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 101), ("aarch64,x86_64", 2002)],
        4,
    );
}

#[test]
fn va_lists_passed_on_at_o0_agree_and_migrate() {
    // record_v hands its va_list on to vsnprintf: aarch64 passes a copy,
    // which hcc elides so both ISAs pass the object itself; at -O0 no
    // optimizer then removed the unused copy's slot, and aarch64's frames
    // had one more (jansson's CMake build, -O0 by default: error.c and
    // pack_unpack.c, "left 7 stack slots for x86_64 and 8 for aarch64").
    let dir = tempfile::tempdir().unwrap();
    let app = compile_without_mismatches(
        dir.path(),
        "va0",
        &["-O0"],
        &[(
            "va0.c",
            r#"#include <stdarg.h>
#include <stdio.h>
#include <string.h>
static char last[200];
static unsigned long checksum;
void record_v(int code, const char *fmt, va_list ap) {
    vsnprintf(last, sizeof last - 1, fmt, ap);
    for (const char *p = last; *p; p++) checksum = checksum * 31 + (unsigned char)*p + (unsigned)code;
}
void record(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record_v(code, fmt, ap);
    va_end(ap);
}
int main(void) {
    for (int i = 0; i < 4000; i++) {
        record(i % 7, "item %d of %s: %f", i, "run", i * 0.5);
        if (i % 1000 == 0) printf("%s %lu\n", last, checksum);
    }
    printf("%lu\n", checksum);
    return 0;
}
"#,
        )],
    );
    migrates_deep(
        &app,
        dir.path(),
        &[("x86_64,aarch64", 3000), ("aarch64,x86_64", 9000)],
        3,
    );
}
