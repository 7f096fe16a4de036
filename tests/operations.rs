//! What a user does to a running program from another shell: `hcontainer
//! migrate PID --to ISA`, `hcontainer checkpoint PID -o DIR` and
//! `hcontainer restore DIR --isa ISA` — and the errors when it cannot be done.

use hc_tests::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nbody steps: about 1.5 s natively, long enough to act on while it runs.
const STEPS: &str = "20000000";

/// `hcontainer run APP ARGS` in `dir` with stdout to `out`, started in the
/// background; returns once its control socket is up.
fn start(isa: &str, app: &Path, args: &[&str], dir: &Path, out: &str) -> Child {
    start_with_input(isa, app, args, dir, out, Stdio::null())
}

/// `start`, with the program's standard input from `stdin`.
fn start_with_input(
    isa: &str,
    app: &Path,
    args: &[&str],
    dir: &Path,
    out: &str,
    stdin: Stdio,
) -> Child {
    let stdout = std::fs::File::create(dir.join(out)).unwrap();
    let child = Command::new(tool("hcontainer"))
        .args(["run", "--isa", isa])
        .arg(app)
        .args(args)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc_getuid() };
    let sock = std::env::temp_dir()
        .join(format!("hcontainer-{uid}"))
        .join(format!("{}.sock", child.id()));
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no control socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    child
}

extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
}

fn finish(child: Child) -> Run {
    child.wait_with_output().unwrap().into()
}

fn pid_str(c: &Child) -> String {
    c.id().to_string()
}

#[test]
fn migrate_pid_moves_a_running_program_there_and_back() {
    let app = example("nbody");
    let base = tempfile::tempdir().unwrap();
    let expected = native(&app, &[STEPS], base.path());
    let dir = tempfile::tempdir().unwrap();
    let child = start("x86_64", &app, &[STEPS], dir.path(), "out.txt");
    let pid = pid_str(&child);
    let there = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_ok(&there, "hcontainer migrate --to aarch64");
    assert!(
        there.stderr.contains("migrated x86_64 -> aarch64"),
        "{}",
        there.stderr
    );
    // Migrating to where it already is says so and changes nothing.
    let same = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_eq!(same.code, Some(1));
    assert!(
        same.stderr.contains("already runs on aarch64"),
        "{}",
        same.stderr
    );
    let back = hcontainer(&["migrate", &pid, "--to", "x86_64"], dir.path());
    assert_ok(&back, "hcontainer migrate --to x86_64");
    let run = finish(child);
    assert_eq!(run.code, expected.code, "{}", run.stderr);
    let got = std::fs::read(dir.path().join("out.txt")).unwrap();
    assert!(
        got == expected.stdout,
        "output differs from the uninterrupted run's\n{}",
        run.stderr
    );
}

/// The offset of descriptor `fd` recorded in a snapshot.
fn fd_offset(snapshot: &Path, fd: u64) -> usize {
    let r = hcontainer(&["show", snapshot.to_str().unwrap()], Path::new("."));
    assert_ok(&r, "hcontainer show");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    v["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fd"].as_u64() == Some(fd))
        .and_then(|f| f["offset"].as_u64())
        .expect("fd in snapshot") as usize
}

#[test]
fn checkpoint_restores_twice_on_each_isa_with_the_same_result() {
    // Started on aarch64 (qemu: seconds), so the checkpoint is early and
    // each restore runs most of the program.
    let steps = "2000000";
    let app = example("nbody");
    let base = tempfile::tempdir().unwrap();
    let expected = native(&app, &[steps], base.path());
    let dir = tempfile::tempdir().unwrap();
    let child = start("aarch64", &app, &[steps], dir.path(), "out.txt");
    let ckpt = dir.path().join("ckpt");
    let r = hcontainer(
        &[
            "checkpoint",
            &pid_str(&child),
            "-o",
            ckpt.to_str().unwrap(),
            "--leave-running",
        ],
        dir.path(),
    );
    assert_ok(&r, "hcontainer checkpoint --leave-running");
    // The program went on to its end undisturbed.
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(std::fs::read(dir.path().join("out.txt")).unwrap() == expected.stdout);
    // Each restore continues from the checkpoint: stdout (a file) reopened
    // at its offset then, so the output up to there plus what the restored
    // program writes is the whole output.
    let offset = fd_offset(&ckpt.join("snapshot.hcs"), 1);
    assert!(
        offset < expected.stdout.len(),
        "checkpoint taken before the end"
    );
    for isa in ["x86_64", "aarch64"] {
        for round in 1..=2 {
            std::fs::write(dir.path().join("out.txt"), &expected.stdout[..offset]).unwrap();
            let r = hcontainer(
                &["restore", ckpt.to_str().unwrap(), "--isa", isa],
                dir.path(),
            );
            assert_ok(&r, &format!("restore #{round} on {isa}"));
            let got = std::fs::read(dir.path().join("out.txt")).unwrap();
            assert!(
                got == expected.stdout,
                "restore #{round} on {isa}: output differs ({} vs {} bytes)\n{}",
                got.len(),
                expected.stdout.len(),
                r.stderr
            );
        }
    }
}

#[test]
fn checkpoint_then_stop_and_bad_checkpoints() {
    let app = example("nbody");
    let dir = tempfile::tempdir().unwrap();
    let child = start("x86_64", &app, &[STEPS], dir.path(), "out.txt");
    let ckpt = dir.path().join("ckpt");
    let r = hcontainer(
        &["checkpoint", &pid_str(&child), "-o", ckpt.to_str().unwrap()],
        dir.path(),
    );
    assert_ok(&r, "hcontainer checkpoint");
    let run = finish(child);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stderr.contains("stopped after its checkpoint"),
        "{}",
        run.stderr
    );

    let restore = |d: &Path| hcontainer(&["restore", d.to_str().unwrap()], dir.path());
    // Not a checkpoint.
    let r = restore(dir.path());
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("is not a checkpoint"), "{}", r.stderr);
    // Truncated snapshot.
    let bad = dir.path().join("truncated");
    copy_dir(&ckpt, &bad);
    let snap = std::fs::read(bad.join("snapshot.hcs")).unwrap();
    std::fs::write(bad.join("snapshot.hcs"), &snap[..snap.len() / 2]).unwrap();
    let r = restore(&bad);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("damaged checkpoint"), "{}", r.stderr);
    // Another build of the program.
    let other = dir.path().join("other-build");
    copy_dir(&ckpt, &other);
    let m = std::fs::read_to_string(other.join("checkpoint.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    let id = v["build_id"].as_str().unwrap();
    let m = m.replace(id, &"0".repeat(id.len()));
    std::fs::write(other.join("checkpoint.json"), m).unwrap();
    let r = restore(&other);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("rebuilt since this checkpoint"),
        "{}",
        r.stderr
    );
    // A newer format.
    let newer = dir.path().join("newer");
    copy_dir(&ckpt, &newer);
    let m = std::fs::read_to_string(newer.join("checkpoint.json")).unwrap();
    std::fs::write(
        newer.join("checkpoint.json"),
        m.replace("\"version\": 1", "\"version\": 99"),
    )
    .unwrap();
    let r = restore(&newer);
    assert!(r.stderr.contains("format version 99"), "{}", r.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The plain program `app ARGS` (no hcontainer), stdout piped, in `dir`,
/// given time to get going.
fn start_plain(app: &Path, args: &[&str], dir: &Path) -> Child {
    let child = Command::new(app)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child
}

#[test]
fn a_plainly_started_program_migrates_and_its_parent_sees_it_end() {
    let app = example("nbody");
    let base = tempfile::tempdir().unwrap();
    let expected = native(&app, &[STEPS], base.path());
    let dir = tempfile::tempdir().unwrap();
    let child = start_plain(&app, &[STEPS], dir.path());
    let pid = pid_str(&child);
    let there = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_ok(&there, "hcontainer migrate --to aarch64 (plain process)");
    assert!(
        there.stderr.contains("started without hcontainer")
            && there.stderr.contains("migrated x86_64 -> aarch64"),
        "{}",
        there.stderr
    );
    // The original PID stays the program's name and holds no memory.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kib < 1024, "the parked original holds {rss_kib} KiB");
    let back = hcontainer(&["migrate", &pid, "--to", "x86_64"], dir.path());
    assert_ok(
        &back,
        "hcontainer migrate --to x86_64 (by the original PID)",
    );
    // Its stdout is a pipe: handed from process to process, output whole.
    assert_same(
        &expected,
        &finish(child),
        "plain nbody migrated there and back",
    );
}

#[test]
fn signals_to_a_moved_plain_program_reach_it() {
    let app = example("nbody");
    let dir = tempfile::tempdir().unwrap();
    let child = start_plain(&app, &[STEPS], dir.path());
    let pid = pid_str(&child);
    let there = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_ok(&there, "hcontainer migrate --to aarch64 (plain process)");
    let now_at: u32 = there
        .stderr
        .split("now process ")
        .nth(1)
        .and_then(|r| r.split(')').next()?.parse().ok())
        .expect("the new PID is printed");
    // SAFETY: kill with a valid signal on the child's PID.
    unsafe { libc_kill(child.id() as i32, 15) };
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(15),
        "the original ends as the program did ({:?}); hcontainer migrate said:\n{}\nthe program's stderr:\n{}",
        out.status,
        there.stderr,
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    while Path::new(&format!("/proc/{now_at}")).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the migrated program {now_at} outlived SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signals_sent_to_hcontainer_reach_the_program() {
    // `kill PID` of `hcontainer run` (as `timeout` or a service manager
    // does): the program's SIGTERM handler must run and hcontainer end
    // with the program's status. Before, SIGTERM ended hcontainer and the
    // program ran on, orphaned.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "graceful",
        r#"#include <signal.h>
#include <stdio.h>
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    signal(SIGTERM, on_term);
    unsigned long x = 1;
    while (!stop)
        x = step(x);
    printf("stopped cleanly\n");
    return 3;
}
"#,
    );
    let mut child = Command::new(tool("hcontainer"))
        .args(["run", "--migrate", "x86_64,aarch64", "--every", "20ms"])
        .arg(&app)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it has moved, so the signal has a new process to find.
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let t0 = Instant::now();
    while !said.contains("migrated x86_64 -> aarch64") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no migration: {said}"
        );
        use std::io::BufRead;
        if err.read_line(&mut said).unwrap() == 0 {
            panic!("hcontainer ended first: {said}");
        }
    }
    // SAFETY: kill with a valid signal on our child's PID.
    unsafe { libc_kill(child.id() as i32, 15) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "stopped cleanly\n");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn requests_for_processes_hcontainer_does_not_run_are_refused() {
    // This test process exists but hcc did not build it.
    let me = std::process::id().to_string();
    let r = hcontainer(&["migrate", &me, "--to", "aarch64"], Path::new("."));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("which is not a program built by hcc"),
        "{}",
        r.stderr
    );
    let r = hcontainer(&["checkpoint", "999999999", "-o", "x"], Path::new("."));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("there is no process 999999999"),
        "{}",
        r.stderr
    );
}

/// Connects to the service on 127.0.0.1:`port` (retrying while it is not
/// listening yet, e.g. during a restore) and returns its answer.
fn ask(port: u16) -> String {
    use std::io::Read;
    let t0 = Instant::now();
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                return answer;
            }
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "nothing listens on port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The port the server example wrote to `file`, once it has.
fn port_in(file: &Path) -> u16 {
    let t0 = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            return text.trim().parse().unwrap();
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no port file");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_checkpointed_service_listens_on_its_port_again_on_another_isa() {
    let app = example("server");
    // Uninterrupted: two clients, natively.
    let base = tempfile::tempdir().unwrap();
    let native_run = Command::new(&app)
        .args(["port", "2"])
        .current_dir(base.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let port = port_in(&base.path().join("port"));
    let answers = [ask(port), ask(port)];
    let expected = native_run.wait_with_output().unwrap();
    assert_eq!(answers, ["hello 1\n", "hello 2\n"]);

    let dir = tempfile::tempdir().unwrap();
    let child = start("x86_64", &app, &["port", "2"], dir.path(), "out.txt");
    let port = port_in(&dir.path().join("port"));
    assert_eq!(ask(port), answers[0]);
    let ckpt = dir.path().join("ckpt");
    let r = hcontainer(
        &["checkpoint", &pid_str(&child), "-o", ckpt.to_str().unwrap()],
        dir.path(),
    );
    assert_ok(&r, "hcontainer checkpoint (and stop)");
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Later, on the other ISA: the same port, the next client.
    let restore = Command::new(tool("hcontainer"))
        .args(["restore", ckpt.to_str().unwrap(), "--isa", "aarch64"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(ask(port), answers[1]);
    let r: Run = restore.wait_with_output().unwrap().into();
    assert_eq!(r.code, expected.status.code(), "{}", r.stderr);
    let got = std::fs::read(dir.path().join("out.txt")).unwrap();
    assert!(
        got == expected.stdout,
        "output differs from the uninterrupted run's: {:?}\n{}",
        String::from_utf8_lossy(&got),
        r.stderr
    );
}

#[test]
fn checkpoint_and_stop_refuses_what_it_cannot_carry_and_the_program_goes_on() {
    let app = example("server");
    let dir = tempfile::tempdir().unwrap();
    let child = start(
        "x86_64",
        &app,
        &["port", "1", "pair"],
        dir.path(),
        "out.txt",
    );
    let port = port_in(&dir.path().join("port"));
    let ckpt = dir.path().join("ckpt");
    let t0 = Instant::now();
    let r = hcontainer(
        &["checkpoint", &pid_str(&child), "-o", ckpt.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("is a connected or Unix-domain socket")
            && r.stderr.contains("the program continues"),
        "{}",
        r.stderr
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a refusal that waiting cannot change is not retried"
    );
    assert!(!ckpt.join("checkpoint.json").exists());
    // Still there and serving.
    assert_eq!(ask(port), "hello 1\n");
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "listening\nserved 1\ndone\n"
    );
}

#[test]
fn a_checkpoint_does_not_take_a_file_lock_from_the_running_program() {
    // A lock on an open file (flock) goes with that open file: a migration
    // hands it over, a checkpoint cannot. Checkpoint-and-stop is refused
    // at once, naming it, and the program keeps its lock and goes on;
    // --leave-running writes the checkpoint and says what is not in it.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "holder",
        r#"#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    do
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    while ((x & 0xf) == 3);
    return x;
}
int main(void) {
    int fd = open("instance.lock", O_RDWR | O_CREAT, 0644);
    if (flock(fd, LOCK_EX | LOCK_NB)) return 1;
    unsigned long x = 1;
    while (access("stop", F_OK))
        for (int i = 0; i < 100000; i++)
            x = step(x);
    int other = open("instance.lock", O_RDWR);
    printf("still locked: %d\n", flock(other, LOCK_EX | LOCK_NB) != 0);
    return 0;
}
"#,
    );
    let child = start("x86_64", &app, &[], dir.path(), "out.txt");
    let ckpt = dir.path().join("ckpt");
    let t0 = Instant::now();
    let r = hcontainer(
        &["checkpoint", &pid_str(&child), "-o", ckpt.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("descriptor 3 holds a lock on its open file (flock)")
            && r.stderr.contains("instance.lock")
            && r.stderr.contains("the program continues"),
        "{}",
        r.stderr
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "not retried");
    assert!(!ckpt.join("checkpoint.json").exists());
    let kept = hcontainer(
        &[
            "checkpoint",
            "--leave-running",
            &pid_str(&child),
            "-o",
            ckpt.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_ok(&kept, "checkpoint --leave-running");
    assert!(
        kept.stderr.contains("not in it: descriptor 3 holds a lock"),
        "{}",
        kept.stderr
    );
    std::fs::write(dir.path().join("stop"), "").unwrap();
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "still locked: 1\n"
    );
}

#[test]
fn a_program_under_its_own_seccomp_filter_is_not_migrated_and_not_lost() {
    // A filter the program installs stays with its process: it cannot be
    // set up again on a destination, and this one kills the process for a
    // system call the dump makes (waitid). Every migration killed it with
    // SIGSYS; now requests end before the filter goes in, hcontainer says
    // why, and the program runs to its end as it would have.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "sandboxed",
        r#"#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
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
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_waitid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    unsigned long x = 1;
    for (int r = 0; r < 100; r++)
        x = step(x);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    int rc = argc > 1 && !strcmp(argv[1], "syscall") ? (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)
                                                     : prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
    printf("installed %d\n", rc);
    for (int r = 0; r < 4000000; r++)
        x = step(x);
    printf("%lu\n", x & 0xff);
    return 0;
}
"#,
    );
    let app_s = app.to_str().unwrap();
    let want = native(&app, &[], dir.path());
    assert!(
        String::from_utf8_lossy(&want.stdout).starts_with("installed 0\n"),
        "{:?}",
        want
    );
    let refused = |run: &Run, what: &str| {
        assert_same(&want, run, what);
        assert!(
            run.stderr
                .contains("put itself under seccomp (a filter; Seccomp: 2")
                && run.migrations().is_empty(),
            "{what}: {}",
            run.stderr
        );
    };
    // A point counted down in the program (prctl), and a time (syscall).
    let at = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64",
            "--at-point",
            "1000000",
            app_s,
        ],
        dir.path(),
    );
    refused(&at, "--at-point");
    let every = hcontainer(
        &[
            "run",
            "--migrate",
            "x86_64,aarch64",
            "--every",
            "300ms",
            app_s,
            "syscall",
        ],
        dir.path(),
    );
    refused(&every, "--every");
    // Asked from another shell, of a plainly started program.
    let child = start_plain(&app, &["syscall"], dir.path());
    let pid = pid_str(&child);
    let ask = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_eq!(ask.code, Some(1), "{}", ask.stderr);
    assert!(
        ask.stderr.contains("put itself under seccomp"),
        "{}",
        ask.stderr
    );
    assert_same(&want, &finish(child), "asked from another shell");
}

#[test]
fn a_plainly_started_program_that_gave_up_root_is_adopted_and_migrates() {
    // A service started as root that switched to another user, adopted by
    // `hcontainer migrate PID`: it could not create its dump in the
    // adoption's directory (root's), and every attempt was refused ("cannot
    // write the dump") until it ended. Now the directory becomes its
    // user's; one adopted while still root keeps a spare dump file for
    // when it switches.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "service",
        r#"#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static volatile unsigned long sink;
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static __attribute__((noinline)) unsigned long step(unsigned long x) {
    for (int i = 0; i < 2000; i++) {
        x = x * 6364136223846793005ul + 1442695040888963407ul;
        sink = x;
    }
    return x;
}
static int drop(void) {
    gid_t one = 65533;
    return setgroups(1, &one) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534);
}
int main(int argc, char **argv) {
    int late = argc > 1 && !strcmp(argv[1], "late");
    if (!late && drop()) return 1;
    double t0 = now();
    unsigned long x = 1;
    int dropped = !late;
    while (now() - t0 < 2.5) {
        x = step(x);
        if (!dropped && now() - t0 > 0.8) {
            if (drop()) return 1;
            dropped = 1;
        }
    }
    printf("uid %d euid %d groups %d\n", (int)getuid(), (int)geteuid(), getgroups(0, 0));
    return 0;
}
"#,
    );
    let want = native(&app, &[], dir.path());
    assert_eq!(want.stdout_str(), "uid 65534 euid 65534 groups 1\n");
    // Switched before it was adopted.
    let child = start_plain(&app, &[], dir.path());
    let pid = pid_str(&child);
    let there = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_ok(&there, "hcontainer migrate --to aarch64 (switched user)");
    let back = hcontainer(&["migrate", &pid, "--to", "x86_64"], dir.path());
    assert_ok(&back, "hcontainer migrate --to x86_64 (switched user)");
    assert_same(&want, &finish(child), "adopted after switching user");
    // Adopted as root, switched after.
    let child = start_plain(&app, &["late"], dir.path());
    let pid = pid_str(&child);
    let mut adopt = Command::new(tool("hcontainer"))
        .args(["adopt", &pid])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let there = hcontainer(&["migrate", &pid, "--to", "aarch64"], dir.path());
    assert_ok(
        &there,
        "hcontainer migrate --to aarch64 (switched after adoption)",
    );
    assert_same(
        &want,
        &finish(child),
        "adopted as root, switched user after",
    );
    let _ = adopt.wait();
}

/// The source of a program that waits for input in each call hcontainer can
/// migrate while it waits: `poll`, `read` (in a function with values live
/// across the call, a double among them), stdio's `fgets` and `fread`,
/// `accept` and `recv`. It prints
/// what it received; argv[1] is the file it writes its port to.
const WAITER: &str = r#"#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
__attribute__((noinline)) static double take_line(double w, long *total) {
    char buf[128];
    ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0) return -1;
    *total += n;
    printf("read %.*s", (int)n, buf);
    return w * 1.5 + (double)n;
}
int main(int argc, char **argv) {
    long total = 0;
    double w = 0.25;
    struct pollfd p = {0, POLLIN, 0};
    if (argc < 2 || poll(&p, 1, -1) != 1) return 3;
    w = take_line(w, &total);
    printf("after poll: %.4f %ld\n", w, total);
    fflush(stdout);
    w = take_line(w, &total);
    printf("after read: %.4f %ld\n", w, total);
    fflush(stdout);
    char line[64], more[8] = {0};
    if (!fgets(line, sizeof line, stdin)) return 7;
    printf("fgets %s", line);
    fflush(stdout);
    size_t got = fread(more, 1, 7, stdin);
    if (got != 7) return 8;
    total += (long)(strlen(line) + got);
    printf("fread %s", more);
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) || listen(srv, 4) ||
        getsockname(srv, (struct sockaddr *)&a, &alen))
        return 4;
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "%u\n", ntohs(a.sin_port));
    fclose(f);
    int c = accept(srv, 0, 0);
    if (c < 0) return 5;
    char buf[64];
    ssize_t n = recv(c, buf, sizeof buf, 0);
    if (n <= 0) return 6;
    printf("received %.*s", (int)n, buf);
    char reply[64];
    int len = snprintf(reply, sizeof reply, "%.4f\n", w + (double)n);
    send(c, reply, (size_t)len, 0);
    close(c);
    printf("end %ld\n", total);
    return 0;
}
"#;

/// `hcontainer migrate PID --to ISA`, which must succeed within 30 s.
fn migrate_within(pid: &str, isa: &str, dir: &Path) {
    let mut child = Command::new(tool("hcontainer"))
        .args(["migrate", pid, "--to", isa])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("hcontainer migrate --to {isa} did not finish while the program waited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let r: Run = child.wait_with_output().unwrap().into();
    assert_ok(&r, &format!("hcontainer migrate --to {isa}"));
}

/// Waits until `file` holds `text`.
fn wait_for_text(file: &Path, text: &str) {
    let t0 = Instant::now();
    while !std::fs::read_to_string(file).is_ok_and(|s| s.contains(text)) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{} never held {text:?}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Drives WAITER: input in steps, `between(step)` before each step, while
/// the program waits. Returns the service's reply and the program's run.
fn drive_waiter(app: &Path, dir: &Path, between: &dyn Fn(&str, &Path)) -> (String, Run) {
    use std::io::{Read, Write};
    let child = start_with_input("x86_64", app, &["port"], dir, "out.txt", Stdio::piped());
    let pid = pid_str(&child);
    let mut child = child;
    let mut input = child.stdin.take().unwrap();
    // Waiting in poll, then in read.
    between(&pid, dir);
    input.write_all(b"first line\n").unwrap();
    wait_for_text(&dir.join("out.txt"), "after poll");
    between(&pid, dir);
    input.write_all(b"second\n").unwrap();
    // Waiting in fgets, then in fread.
    wait_for_text(&dir.join("out.txt"), "after read");
    between(&pid, dir);
    input.write_all(b"third line\n").unwrap();
    wait_for_text(&dir.join("out.txt"), "fgets");
    between(&pid, dir);
    input.write_all(b"fourth\n").unwrap();
    // Waiting in accept, then in recv.
    let port = port_in(&dir.join("port"));
    std::thread::sleep(Duration::from_millis(200));
    between(&pid, dir);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    between(&pid, dir);
    s.write_all(b"ping\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    drop(input);
    (reply, finish(child))
}

#[test]
fn a_program_waiting_for_input_migrates_while_it_waits() {
    // A request used to wait for the program's next migration point, and
    // a program blocked in read() reached none until its input came: a
    // service idle between clients could not be moved at all. Now each
    // migration below completes while the program waits for the input that
    // is only sent after it, and the program goes on as if never moved.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(dir.path(), "waiter", WAITER);
    let base = tempfile::tempdir().unwrap();
    let (want_reply, want) = drive_waiter(&app, base.path(), &|_, _| {});
    assert_eq!(want.code, Some(0), "{}", want.stderr);
    // 0.25 -> 0.375 + 11 -> 17.0625 + 7 -> + 5 bytes of "ping\n".
    assert_eq!(want_reply, "29.0625\n");
    let hops = std::cell::Cell::new(0);
    let (reply, got) = drive_waiter(&app, dir.path(), &|pid, dir| {
        let to = ["aarch64", "x86_64"][hops.get() % 2];
        hops.set(hops.get() + 1);
        migrate_within(pid, to, dir);
    });
    assert_eq!(hops.get(), 6);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(reply, want_reply);
    let out = |d: &Path| std::fs::read(d.join("out.txt")).unwrap();
    assert!(
        out(dir.path()) == out(base.path()),
        "output differs from the uninterrupted run's: {:?}\n{}",
        String::from_utf8_lossy(&out(dir.path())),
        got.stderr
    );
}

/// Reads with scanf (ten pointers: some passed on the stack on both ISAs),
/// getline, getdelim, fscanf and vscanf, each when nothing is buffered.
const SCANNER: &str = r#"#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
__attribute__((noinline)) static int scan_more(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vscanf(fmt, ap);
    va_end(ap);
    return r;
}
int main(void) {
    int v[9];
    char word[16];
    double w = 0.5;
    printf("ready\n");
    fflush(stdout);
    int got = scanf("%d %d %d %d %d %d %d %d %d %15s%*c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7], &v[8], word);
    if (got != 10) return 2;
    long sum = 0;
    for (int i = 0; i < 9; i++) sum += v[i] * (i + 1);
    printf("scanf %ld %s\n", sum, word);
    fflush(stdout);
    char *line = 0;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) return 3;
    w += (double)n / 4;
    printf("getline %zd %s", n, line);
    fflush(stdout);
    n = getdelim(&line, &cap, ';', stdin);
    if (n < 0) return 4;
    printf("getdelim %zd %s\n", n, line);
    fflush(stdout);
    int x = 0;
    if (fscanf(stdin, "%d%*c", &x) != 1) return 5;
    printf("fscanf %d\n", x);
    fflush(stdout);
    int y = 0, z = 0;
    if (scan_more("%2$d %1$d", &y, &z) != 2) return 6;
    printf("vscanf %d %d %.3f\n", y, z, w * x);
    free(line);
    return 0;
}
"#;

/// Drives SCANNER: each line sent after `between`, once the program waits
/// for it.
fn drive_scanner(app: &Path, dir: &Path, between: &dyn Fn(&str, &Path)) -> Run {
    use std::io::Write;
    let mut child = start_with_input("x86_64", app, &[], dir, "out.txt", Stdio::piped());
    let pid = pid_str(&child);
    let mut input = child.stdin.take().unwrap();
    let out = dir.join("out.txt");
    for (wait, line) in [
        ("ready", &b"1 2 3 4 5 6 7 8 9 migrated\n"[..]),
        ("scanf", b"a whole line\n"),
        ("getline", b"up to here;"),
        ("getdelim", b"42\n"),
        ("fscanf", b"17 23\n"),
    ] {
        wait_for_text(&out, wait);
        // The program is in its read call, nothing buffered.
        std::thread::sleep(Duration::from_millis(100));
        between(&pid, dir);
        input.write_all(line).unwrap();
    }
    drop(input);
    finish(child)
}

#[test]
fn a_program_waiting_in_scanf_or_getline_migrates_while_it_waits() {
    // scanf and getline waited inside musl, where no migration point is:
    // an interactive program at its prompt could not be moved. Now each
    // migration below completes while the program waits for the line that
    // is only sent after it, and the values arrive where the program's
    // pointers point, on whichever ISA it is then.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(dir.path(), "scanner", SCANNER);
    let base = tempfile::tempdir().unwrap();
    let want = drive_scanner(&app, base.path(), &|_, _| {});
    assert_eq!(want.code, Some(0), "{}", want.stderr);
    let out = |d: &Path| std::fs::read_to_string(d.join("out.txt")).unwrap();
    assert_eq!(
        out(base.path()),
        "ready\nscanf 285 migrated\ngetline 13 a whole line\ngetdelim 11 up to here;\n\
         fscanf 42\nvscanf 23 17 157.500\n"
    );
    let hops = std::cell::Cell::new(0);
    let got = drive_scanner(&app, dir.path(), &|pid, dir| {
        let to = ["aarch64", "x86_64"][hops.get() % 2];
        hops.set(hops.get() + 1);
        migrate_within(pid, to, dir);
    });
    assert_eq!(hops.get(), 5);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(out(dir.path()), out(base.path()), "{}", got.stderr);
}

#[test]
fn a_sleeping_program_migrates_mid_sleep_and_sleeps_what_is_left() {
    // A request used to wait until the program's sleep ended (sleep(60) in
    // a periodic job: a minute). Now the program moves mid-sleep, and the
    // destination sleeps only what is left: the sleep lasts as long as asked
    // in all, and says so.
    let dir = tempfile::tempdir().unwrap();
    let app = compile_source(
        dir.path(),
        "naps",
        r#"#include <stdio.h>
#include <time.h>
#include <unistd.h>
static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000ll + t.tv_nsec / 1000000;
}
int main(int argc, char **argv) {
    (void)argv;
    double weight = argc * 0.75;
    long long t0 = now_ms();
    unsigned left = sleep(4);
    printf("sleep: %s, %u left, %.2f\n", now_ms() - t0 >= 4000 ? "in full" : "cut short", left, weight);
    fflush(stdout);
    struct timespec d = {2, 500000000}, rem = {7, 7};
    t0 = now_ms();
    int r = nanosleep(&d, &rem);
    printf("nanosleep: %d, %s, rem %ld\n", r, now_ms() - t0 >= 2500 ? "in full" : "cut short", (long)rem.tv_sec);
    return 0;
}
"#,
    );
    let out = dir.path().join("out.txt");
    let child = start("x86_64", &app, &[], dir.path(), "out.txt");
    let pid = pid_str(&child);
    std::thread::sleep(Duration::from_millis(300));
    migrate_within(&pid, "aarch64", dir.path());
    // Moved while the first sleep had seconds to go.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains("sleep:"),
        "migrated only after the sleep: {text}"
    );
    wait_for_text(&out, "sleep:");
    std::thread::sleep(Duration::from_millis(300));
    migrate_within(&pid, "x86_64", dir.path());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains("nanosleep:"),
        "migrated only after the sleep: {text}"
    );
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "sleep: in full, 0 left, 0.75\nnanosleep: 0, in full, rem 7\n",
        "{}",
        run.stderr
    );
}

#[test]
fn reading_a_stream_that_holds_unwritten_output_writes_it_first() {
    // A socket's "r+" FILE: the parent writes a line and reads the answer
    // without fflush, as musl allows (its read functions write pending
    // output out first). The wrapper that lets fgets migrate while it
    // waits polled before musl ran, so the line was never sent and both
    // processes waited for each other (jimtcl's socket and interactive
    // tests hung).
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let app = compile_source(
        dir,
        "rw",
        r#"#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    alarm(20); /* a hang fails the test instead of stalling it */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        FILE *c = fdopen(sv[1], "r+");
        char line[64];
        while (fgets(line, sizeof line, c)) {
            fprintf(c, "echo %s", line);
            fflush(c);
        }
        _exit(0);
    }
    close(sv[1]);
    FILE *s = fdopen(sv[0], "r+");
    char line[64];
    for (int i = 0; i < 3; i++) {
        fprintf(s, "line %d\n", i); /* no fflush: reading writes it out */
        if (!fgets(line, sizeof line, s)) return 2;
        printf("%s", line);
    }
    fclose(s);
    waitpid(pid, 0, 0);
    return 0;
}
"#,
    );
    let want = alike_on_both_isas(dir, "rw", &app);
    assert_eq!(want.stdout, b"echo line 0\necho line 1\necho line 2\n");
}

/// Runs `app` natively and on aarch64 against a plain clang build of
/// `<name>.c` beside it: the same output every time. Returns plain's run.
fn alike_on_both_isas(dir: &Path, name: &str, app: &Path) -> Run {
    let plain = dir.join(format!("{name}-plain"));
    plain_build(&dir.join(format!("{name}.c")), &plain);
    let want = native(&plain, &[], dir);
    assert_same(&want, &native(app, &[], dir), "x86_64");
    let arm = hcontainer(&["run", "--isa", "aarch64", app.to_str().unwrap()], dir);
    assert_same(&want, &arm, "aarch64");
    want
}

#[test]
fn stdio_reads_of_a_non_blocking_descriptor_fail_at_once() {
    // fgets/fread on an O_NONBLOCK descriptor with nothing to read fail
    // with EAGAIN in musl; the wrapper that lets them migrate while they
    // wait waited for input instead (jimtcl's expect package, reading a
    // pty that way, hung). alarm() turns a hang into a failure.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let app = compile_source(
        dir,
        "nb",
        r#"#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    alarm(10);
    int p[2];
    pipe(p);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    FILE *f = fdopen(p[0], "r");
    char line[32];
    errno = 0;
    char *r = fgets(line, sizeof line, f);
    printf("fgets on an empty non-blocking pipe: %s, errno %s\n", r ? "data" : "NULL", errno == EAGAIN ? "EAGAIN" : strerror(errno));
    clearerr(f);
    write(p[1], "hi\n", 3);
    r = fgets(line, sizeof line, f);
    printf("then: %s", r ? line : "NULL\n");
    char buf[8];
    size_t n = fread(buf, 1, sizeof buf, f);
    printf("fread on empty: %zu, %s\n", n, ferror(f) && errno == EAGAIN ? "EAGAIN" : "other");
    return 0;
}
"#,
    );
    let want = alike_on_both_isas(dir, "nb", &app);
    assert!(
        String::from_utf8_lossy(&want.stdout).contains("NULL, errno EAGAIN"),
        "{}",
        String::from_utf8_lossy(&want.stdout)
    );
}
