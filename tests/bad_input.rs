//! Bad input gets a clear error naming the problem, and nothing is lost: a
//! parked source continues when its migration cannot complete.

use hc_metadata::{container, meta, Isa};
use hc_tests::*;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader, Sym};
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    let out = build_dir().join(format!("fixture-{name}"));
    if !out.exists() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(format!("{name}.c"));
        compile(&src, &out);
    }
    out
}

/// A live migration whose first attempt meets `fault`: the program keeps
/// running, the retry succeeds, the output is the uninterrupted run's.
fn survives_fault(fault: &str, expect: &str) {
    let app = example("linked");
    let dir = tempfile::tempdir().unwrap();
    let expected = native(&app, &[], dir.path());
    let got: Run = Command::new(tool("hcontainer"))
        .args([
            "run",
            "--migrate",
            "x86_64,aarch64,x86_64",
            "--at-point",
            "300",
        ])
        .arg(&app)
        .env("HCONTAINER_FAULT", fault)
        .current_dir(dir.path())
        .output()
        .unwrap()
        .into();
    assert_same(&expected, &got, fault);
    let refusal = got
        .stderr
        .lines()
        .find(|l| l.contains("not possible"))
        .unwrap_or_else(|| panic!("{fault}: no refusal reported:\n{}", got.stderr));
    assert!(refusal.contains(expect), "{fault}: {refusal}");
    assert!(
        refusal.contains("the program continues on x86_64"),
        "{refusal}"
    );
    assert_eq!(
        got.migrations().len(),
        2,
        "{fault}: the retry should migrate:\n{}",
        got.stderr
    );
}

#[test]
fn truncated_dump_during_migration() {
    survives_fault("dump-truncate", "damaged dump: dump: truncated at offset");
}

#[test]
fn corrupted_dump_during_migration() {
    survives_fault(
        "dump-corrupt",
        "damaged dump: dump: unknown record kind 127",
    );
}

#[test]
fn dump_of_another_build_during_migration() {
    survives_fault(
        "dump-foreign",
        "the dump was made by another build of this program",
    );
}

#[test]
fn destination_dying_mid_restore() {
    survives_fault("restore-exit", "restore on aarch64 failed (status 99)");
}

#[test]
fn frames_inside_libc_callbacks_wait_for_the_library_to_return() {
    // Point 500 is inside qsort's calls to the program's comparator. The
    // rewriter used to find qsort's frame only in a dump of the whole
    // process, once per attempt; hcc now names qsort in `__hc_unmigratable`
    // around the call, so the comparator's migration points keep the
    // request (and, after half a second, refuse it without a dump) until
    // qsort has returned.
    let app = fixture("callback");
    let dir = tempfile::tempdir().unwrap();
    let expected = native(&app, &[], dir.path());
    let keep = dir.path().join("keep");
    let got = run_kept(&app, &keep, ["--at-point", "500"], dir.path());
    assert_same(&expected, &got, "callback");
    assert!(
        got.stderr
            .contains("inside qsort, a library function that calls back into it"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
    assert_eq!(dumps_kept(&keep), 1, "dumps written: {}", got.stderr);
}

/// `hcontainer run --keep KEEP --migrate x86_64,aarch64 TRIGGER APP`
/// (`TRIGGER`: `--at-point N` or `--every T`).
fn run_kept(app: &Path, keep: &Path, trigger: [&str; 2], dir: &Path) -> Run {
    let (keep, app) = (keep.to_str().unwrap(), app.to_str().unwrap());
    let [how, when] = trigger;
    hcontainer(
        &[
            "run",
            "--keep",
            keep,
            "--migrate",
            "x86_64,aarch64",
            how,
            when,
            app,
        ],
        dir,
    )
}

/// How many dumps `run --keep DIR` left in DIR (each attempt that dumped).
fn dumps_kept(keep: &Path) -> usize {
    std::fs::read_dir(keep)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("dump-") && !name.ends_with(".snap")
        })
        .count()
}

/// A real dump of `linked`, kept by `run --keep`.
fn kept_dump(dir: &Path) -> PathBuf {
    let keep = run_keeping(&example("linked"), "x86_64,aarch64", 100, dir);
    std::fs::read_dir(&keep)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dump-")
                && p.extension().is_none()
        })
        .expect("a kept dump")
}

fn rewrite(dump: &Path, app: &Path, dir: &Path) -> Run {
    let out = dir.join("out.snap");
    hcontainer(
        &[
            "rewrite",
            dump.to_str().unwrap(),
            app.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        dir,
    )
}

#[test]
fn offline_rewrite_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let dump = kept_dump(dir.path());
    let app = example("linked");
    let ok = rewrite(&dump, &app, dir.path());
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);

    let data = std::fs::read(&dump).unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, &data[..data.len() / 3]).unwrap();
    let r = rewrite(&bad, &app, dir.path());
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("dump: truncated at offset"),
        "{}",
        r.stderr
    );

    let mut flipped = data.clone();
    flipped[0] = b'X';
    std::fs::write(&bad, &flipped).unwrap();
    let r = rewrite(&bad, &app, dir.path());
    assert!(
        r.stderr.contains("bad magic") && r.stderr.contains("this is not a dump"),
        "{}",
        r.stderr
    );

    let other = fixture("foreign");
    let r = rewrite(&dump, &other, dir.path());
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("made by another build"), "{}", r.stderr);

    let r = rewrite(&dump, Path::new("/bin/true"), dir.path());
    assert!(r.stderr.contains("not a multi-ISA program"), "{}", r.stderr);
}

#[test]
fn snapshot_for_another_binary_is_refused_by_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let dump = kept_dump(dir.path());
    let app = example("linked");
    let r = rewrite(&dump, &app, dir.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let snap = dir.path().join("out.snap");
    // Handed to a different program: it must not run anything.
    let o = Command::new(fixture("foreign"))
        .env("HCONTAINER_RESTORE", &snap)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(70));
    assert!(o.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("snapshot is for another build of this program"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A damaged snapshot is named as such.
    let data = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &data[..data.len() - 9]).unwrap();
    let r = hcontainer(&["show", snap.to_str().unwrap()], dir.path());
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("snapshot: truncated"), "{}", r.stderr);
}

#[test]
fn a_migration_snapshot_needs_the_dump_that_holds_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dump = kept_dump(dir.path());
    let snap = dump.with_extension("snap");
    // Memory stays in the dump; the snapshot has the frames and small data.
    let (snap_len, dump_len) = (
        std::fs::metadata(&snap).unwrap().len(),
        std::fs::metadata(&dump).unwrap().len(),
    );
    assert!(
        snap_len * 4 < dump_len,
        "snapshot {snap_len} B, dump {dump_len} B"
    );
    let r = hcontainer(&["show", snap.to_str().unwrap()], dir.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let shown = String::from_utf8_lossy(&r.stdout);
    assert!(shown.contains("\"kind\": \"snapshot\""), "{shown}");
    let restore = || {
        let o = Command::new(example("linked"))
            .env("HCONTAINER_RESTORE", &snap)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(70));
        assert!(o.stdout.is_empty(), "it ran program code");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // Another file in the dump's place: refused, naming it.
    std::fs::write(&dump, vec![7u8; 4096]).unwrap();
    let e = restore();
    assert!(
        e.contains("not a dump of this build") && e.contains(dump.to_str().unwrap()),
        "{e}"
    );
    // The dump gone: refused, naming it; `show` says where the memory was.
    std::fs::remove_file(&dump).unwrap();
    let e = restore();
    assert!(
        e.contains("cannot open the dump that holds the snapshot's memory")
            && e.contains(dump.to_str().unwrap()),
        "{e}"
    );
    let r = hcontainer(&["show", snap.to_str().unwrap()], dir.path());
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("its memory is in") && r.stderr.contains(dump.to_str().unwrap()),
        "{}",
        r.stderr
    );
}

/// File offset of `st_value` of `symbol` in the ELF at `elf`.
fn symbol_value_offset(elf: &[u8], symbol: &str) -> usize {
    let f = ElfFile64::<object::Endianness>::parse(elf).unwrap();
    let e = f.endian();
    let sections = f.elf_header().sections(e, elf).unwrap();
    let symtab = sections.symbols(e, elf, object::elf::SHT_SYMTAB).unwrap();
    let (index, _) = symtab
        .iter()
        .enumerate()
        .find(|(_, s)| symtab.strings().get(s.st_name(e)).ok() == Some(symbol.as_bytes()))
        .expect("symbol present");
    let sh = sections.section(symtab.section()).unwrap();
    sh.sh_offset(e) as usize + index * 24 + 8
}

#[test]
fn a_damaged_variant_is_named_and_the_native_run_unaffected() {
    let app = example("tls");
    let mut data = std::fs::read(&app).unwrap();
    let (at, len) = object::File::parse(data.as_slice())
        .unwrap()
        .section_by_name(&meta::variant_section(Isa::Aarch64))
        .unwrap()
        .file_range()
        .unwrap();
    // Inside the deflated stream.
    let mid = (at + len / 2) as usize;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0xa5;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tls-damaged");
    std::fs::write(&copy, &data).unwrap();
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for args in [
        vec!["run", "--isa", "aarch64", copy.to_str().unwrap()],
        vec![
            "run",
            "--migrate",
            "x86_64,aarch64",
            "--at-point",
            "5",
            copy.to_str().unwrap(),
        ],
        vec!["verify", copy.to_str().unwrap()],
    ] {
        let r = hcontainer(&args, dir.path());
        assert_ne!(r.code, Some(0), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("damaged aarch64 variant")
                && r.stderr.contains("rebuild it with hcc"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // The primary variant is the file itself: it still runs.
    let want = native(&app, &[], dir.path());
    let got = hcontainer(&["run", copy.to_str().unwrap()], dir.path());
    assert_same(&want, &got, "tls with a damaged aarch64 variant, on x86_64");
}

#[test]
fn verify_catches_a_moved_symbol() {
    let app = example("tls");
    let ok = hcontainer(&["verify", app.to_str().unwrap()], Path::new("."));
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    let data = std::fs::read(&app).unwrap();
    let name = meta::variant_section(Isa::Aarch64);
    let packed = object::File::parse(data.as_slice())
        .unwrap()
        .section_by_name(&name)
        .unwrap()
        .data()
        .unwrap()
        .to_vec();
    let mut exe = meta::unpack_variant(&packed).unwrap();
    let at = symbol_value_offset(&exe, "global_calls");
    let v = u64::from_le_bytes(exe[at..at + 8].try_into().unwrap());
    exe[at..at + 8].copy_from_slice(&(v + 0x10).to_le_bytes());
    let data = container::add_sections(&data, &[(&name, &meta::pack_variant(&exe, Isa::Aarch64))])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tls-corrupt");
    std::fs::write(&copy, &data).unwrap();
    let r = hcontainer(&["verify", copy.to_str().unwrap()], dir.path());
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("symbol 'global_calls'"), "{}", r.stderr);
}

#[test]
fn not_a_multi_isa_program() {
    let r = hcontainer(&["run", "--isa", "aarch64", "/bin/true"], Path::new("."));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("not a multi-ISA program") && r.stderr.contains("build it with hcc"),
        "{}",
        r.stderr
    );
    let r = hcontainer(&["verify", "/nonexistent/app"], Path::new("."));
    assert!(r.stderr.contains("No such file"), "{}", r.stderr);
}

#[test]
fn no_migration_while_other_threads_run() {
    let app = fixture("threads");
    let dir = tempfile::tempdir().unwrap();
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 3, dir.path());
    assert_same(&expected, &got, "threads");
    assert!(
        got.stderr.contains("other threads running"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
}

#[test]
fn no_migration_while_a_posix_timer_lives() {
    // The timer's ticks end the first loop; a migration requested then is
    // refused (a timer_t is the kernel's id natively, qemu's under qemu,
    // and the program holds it), and happens once timer_delete has run.
    // Before, the restored program waited for ticks that never came.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "timer",
        r#"#include <signal.h>
#include <stdio.h>
#include <time.h>
static volatile sig_atomic_t ticks;
static void on_tick(int s) { (void)s; ticks++; }
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    signal(SIGALRM, on_tick);
    timer_t t;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
    if (timer_create(CLOCK_MONOTONIC, &ev, &t)) return 1;
    struct itimerspec its = {.it_interval = {0, 2000000}, .it_value = {0, 2000000}};
    timer_settime(t, 0, &its, 0);
    unsigned long x = 1;
    while (ticks < 5)
        x = step(x);
    timer_delete(t);
    for (int i = 0; i < 20000000; i++)
        x = step(x);
    printf("ticks done, then %lu\n", x & 0xffff ? 1ul : 0ul);
    return 0;
}
"#,
    );
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 3, dir.path());
    assert_same(&expected, &got, "timer");
    assert!(
        got.stderr.contains("POSIX timers (timer_create)"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
}

#[test]
fn no_migration_while_a_posix_record_lock_is_held() {
    // A POSIX record lock (fcntl, lockf: sqlite3 takes them for each
    // transaction) belongs to the process: the destination could take it
    // only once the source let it go, and another process could take it
    // between. The dump is refused while it is held, naming the file, and
    // happens once it is released. Before, the destination ran on without
    // the lock.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "recordlock",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    int fd = open("data.db", O_RDWR | O_CREAT, 0644);
    unsigned long x = 1;
    if (lockf(fd, F_LOCK, 0)) return 1;
    for (int i = 0; i < 200000; i++)
        x = step(x);
    lockf(fd, F_ULOCK, 0);
    for (int i = 0; i < 20000000; i++)
        x = step(x);
    printf("%lu\n", x & 1);
    return 0;
}
"#,
    );
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 3, dir.path());
    assert_same(&expected, &got, "record lock");
    assert!(
        got.stderr.contains("data.db) holds a POSIX record lock"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
}

#[test]
fn no_migration_while_the_program_has_child_processes() {
    // A child stays the source process's: after a migration the program's
    // waitpid failed (ECHILD) and the child's exit status was lost. The
    // dump is refused while a child lives or waits to be reaped, and
    // happens once the program has waited for it.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "parent",
        r#"#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    pid_t c = fork();
    if (c == 0) {
        usleep(100000);
        _exit(42);
    }
    unsigned long x = 1;
    for (int i = 0; i < 200000; i++)
        x = step(x);
    int st = 0;
    pid_t w = waitpid(c, &st, 0);
    for (int i = 0; i < 20000000; i++)
        x = step(x);
    printf("waited %d, status %d, %lu\n", w == c, WIFEXITED(st) ? WEXITSTATUS(st) : -1, x & 1);
    return 0;
}
"#,
    );
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 3, dir.path());
    assert_same(&expected, &got, "child process");
    assert!(
        got.stderr.contains("the program has child processes"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
}

#[test]
fn no_migration_while_a_kernel_object_descriptor_is_open() {
    // An eventfd's counter lives in the kernel, and no path reopens it: the
    // dump is refused while it is open, naming it, and happens once it is
    // closed. Before, the destination failed its restore ("cannot carry a
    // pipe or socket") on every attempt.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "eventfd",
        r#"#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    int e = eventfd(0, 0);
    unsigned long x = 1, got = 0;
    for (int r = 0; r < 2000; r++) {
        x = step(x);
        uint64_t one = 1, v;
        if (write(e, &one, 8) == 8 && read(e, &v, 8) == 8)
            got += v;
    }
    close(e);
    for (int i = 0; i < 20000000; i++)
        x = step(x);
    printf("%lu %lu\n", got, x & 1);
    return 0;
}
"#,
    );
    let expected = native(&app, &[], dir.path());
    let got = run_migrating(&app, "x86_64,aarch64", 3, dir.path());
    assert_same(&expected, &got, "eventfd");
    assert!(
        got.stderr
            .contains("descriptor 3 is a kernel object (anon_inode:[eventfd])"),
        "{}",
        got.stderr
    );
    assert_eq!(got.migrations().len(), 1, "{}", got.stderr);
}

#[test]
fn a_long_unmigratable_stretch_with_a_large_heap_is_retried_sparingly() {
    // A 256 MiB heap, and a sort whose frames under qsort cannot migrate.
    // Every attempt dumped the whole heap before the frames were looked at;
    // retried back to back (after 1, 2 ... 64 points, and by --every at
    // once), the program ran minutes instead of seconds (2620 attempts for
    // a 3 s run). Attempts that cost much are spaced by their cost, and
    // since hcc names qsort in `__hc_unmigratable` around the call, one
    // made during the sort waits and is refused without a dump (3 refused
    // attempts here, then one dump of the 258 MiB after the sort).
    // The heap is filled by the first comparison, so that under a loaded
    // machine the first request still comes during the sort, not before.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "bigsort",
        r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static volatile int sink;
static char *volatile heap;
static size_t big = 256u << 20;
static int twist(int x) { return x % 50; }
static int (*volatile bound)(int) = twist;
static int slow_compare(const void *a, const void *b) {
    if (!heap[big - 1])
        memset(heap, 1, big);
    int x = *(const int *)a, y = *(const int *)b;
    for (int i = 0; i < bound(x); i++)
        sink += i;
    return (x > y) - (x < y);
}
int main(void) {
    heap = calloc(big, 1);
    size_t n = 600000;
    int *v = malloc(n * sizeof *v);
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245 + 12345;
        v[i] = (int)(s >> 8) % 10000;
    }
    qsort(v, n, sizeof v[0], slow_compare);
    long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + v[i];
    unsigned long h = 0;
    for (long i = 0; i < 1500000000; i++)
        h = (h ^ (unsigned long)i) * 1099511628211ul;
    printf("hash %ld %lu %d\n", sum, h, heap[12345]);
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    let keep = dir.path().join("keep");
    let got = run_kept(&app, &keep, ["--every", "500ms"], dir.path());
    assert_same(&want, &got, "large heap, unmigratable sort");
    let m = got.migrations();
    assert_eq!(m.len(), 1, "{}", got.stderr);
    let attempts: u64 = m[0]
        .split("(after ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    // The request came during the sort (refused at least once, each
    // refusal half a second of waiting, how many depends on the machine's
    // speed), and the heap was dumped once: for the migration.
    assert!(attempts >= 1, "no refused attempt: {}", got.stderr);
    assert_eq!(dumps_kept(&keep), 1, "dumps written: {}", got.stderr);
}

#[test]
fn a_function_that_cannot_migrate_delays_a_migration_without_dumping() {
    // crunch() has other code on each ISA, so hcc leaves it unmigratable,
    // and the program spends nearly all its time in it, in mix() calls
    // whose polls are migration points. Each attempt used to dump the whole
    // 256 MiB heap before the rewriter found crunch() on the stack and
    // refused (xz -9e: 674 MiB per attempt, and it never migrated). hcc now
    // names crunch() in `__hc_unmigratable` while it calls out, and the
    // migration point keeps the request until crunch() has returned: one
    // dump, written where the program can migrate.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "unmigratable",
        r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static __attribute__((noinline)) unsigned long mix(unsigned long x, int rounds) {
    for (int i = 0; i < rounds; i++)
        do
            x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ul + 1;
        while ((x >> 58) != 5);
    return x;
}
static volatile int half = 50;
/* Other code on each ISA (the same results): hcc cannot migrate it. */
static __attribute__((noinline)) unsigned long crunch(unsigned long x, long n) {
    int r = half;
    for (long i = 0; i < n; i++) {
#if defined(__x86_64__)
        x = mix(mix(x, r), r) + (unsigned long)i;
#else
        x = mix(x, 2 * r) + (unsigned long)i;
#endif
    }
    return x;
}
int main(void) {
    size_t big = 256u << 20;
    char *volatile heap = malloc(big);
    memset(heap, 1, big);
    unsigned long h = 1;
    for (int r = 0; r < 3000; r++) {
        h = crunch(h, 25);
        heap[r] = (char)h;
    }
    printf("%lu %d\n", h, heap[7]);
    return 0;
}
"#,
    );
    let r = hcontainer(&["sites", app.to_str().unwrap()], dir.path());
    assert!(
        r.stdout_str().contains("crunch (") && r.stdout_str().contains("isa-mismatch"),
        "crunch() is expected to be unmigratable: {}",
        r.stdout_str()
    );
    let want = native(&app, &[], dir.path());
    let keep = dir.path().join("keep");
    let got = run_kept(&app, &keep, ["--every", "300ms"], dir.path());
    assert_same(&want, &got, "unmigratable crunch()");
    let m = got.migrations();
    assert_eq!(m.len(), 1, "{}", got.stderr);
    assert!(!m[0].contains("refused"), "{}", got.stderr);
    assert_eq!(dumps_kept(&keep), 1, "dumps written: {}", got.stderr);
}

#[test]
fn a_keep_directory_from_an_earlier_build_does_not_break_a_migration() {
    // `run --keep DIR` writes the destination's variant into DIR; run again
    // after a rebuild, it restored with the old build's variant ("snapshot
    // is for another build of this program") and never migrated.
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep");
    let program = |greeting: &str| {
        format!(
            r#"#include <stdio.h>
static volatile unsigned sink;
int main(void) {{
    for (unsigned i = 0; i < 20; i++) {{
        for (unsigned j = 0; j < 1000000; j++) sink += j ^ i;
        printf("{greeting} %u\n", i);
    }}
    return 0;
}}
"#
        )
    };
    for greeting in ["first", "second"] {
        let app = compile_source(dir.path(), "rebuilt", &program(greeting));
        let want = native(&app, &[], dir.path());
        let got = run_kept(&app, &keep, ["--at-point", "5"], dir.path());
        assert_same(&want, &got, greeting);
        assert_eq!(got.migrations().len(), 1, "{greeting}: {}", got.stderr);
    }
}
