//! `hcontainer run`: starts a program on one ISA and moves it along a list of
//! ISAs, at the Nth migration point or on a timer. The two-phase protocol
//! (DESIGN.md 3.6) over a socket to each process's runtime:
//!
//! ```text
//!  source runtime              hcontainer                destination runtime
//!  DUMP <path>  ───────────►   rewrite → snapshot
//!      (parked)                spawn with HCONTAINER_RESTORE ──► maps memory, re-enters frames
//!                               ◄────────────────────────────── RESTORED <ns>   (or FAIL <why>)
//!  ◄── EXIT  (or CONT <n>)
//!  _exit(0)                    wait for the source
//!                               ────────────────────────────────► GO: continues
//! ```
//! The source is never lost: if the rewrite refuses or the destination fails,
//! it is told to continue (CONT) and tries again at a later migration point.

use crate::binary::Binary;
use crate::control::{self, answer, Control, Request};
use crate::progress::{FileWatch, Progress};
use crate::rewrite;
use hc_metadata::image::{FdInfo, Image, MemoryFile};
use hc_metadata::Isa;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Signal the runtime treats as "migrate at your next migration point"
/// (and a program started plainly as "connect to `hcontainer adopt`").
/// SIGSTKFLT: the kernel never sends it and programs do not use it, so
/// their own SIGUSR1/2 stay theirs; and qemu-user passes it on unchanged,
/// unlike real-time signals, which it renumbers.
pub const MIGRATE_SIGNAL: i32 = libc::SIGSTKFLT;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// ISA to run on (without migrations).
    pub isa: Option<Isa>,
    /// ISAs to visit in order, the first being where the program starts.
    pub migrate: Vec<Isa>,
    /// Migrate at the Nth migration point reached, then N points later, ...
    pub at_point: Option<u64>,
    /// Migrate after this much run time on each ISA.
    pub every: Option<Duration>,
    /// Keep dumps and snapshots in this directory.
    pub keep: Option<PathBuf>,
    /// Start by restoring this snapshot (`hcontainer restore`).
    pub restore: Option<PathBuf>,
}

/// How long a `migrate PID` or `checkpoint PID` request keeps trying while
/// the program is somewhere it cannot migrate from.
const REQUEST_PATIENCE: Duration = Duration::from_secs(10);

/// What the supervisor waits for.
enum Event {
    /// A line from the runtime (None: it closed its end, the process ended).
    Line(Option<String>),
    /// The deadline passed.
    Timeout,
    /// Another hcontainer asks something.
    Client(UnixStream, Result<Request, String>),
    /// A line from an adopted program's original process (None: it was killed).
    Origin(Option<String>),
    /// Signals sent to hcontainer, to pass on to the program.
    Signals(Vec<i32>),
    /// Nothing (interrupted).
    Idle,
}

/// Waits for the runtime, a request, the origin or a signal to pass on
/// (`signals`: the descriptor of `forward`), until `timeout`.
fn next_event(
    cur: &mut Proc,
    control: Option<&Control>,
    origin: Option<&mut Proc>,
    signals: Option<i32>,
    timeout: Option<Duration>,
) -> std::io::Result<Event> {
    let timed = |r: std::io::Result<Option<String>>| match r {
        Err(e) if e.kind() == ErrorKind::TimedOut => Ok(Event::Timeout),
        r => r.map(Event::Line),
    };
    if !cur.reader.buffer().is_empty() {
        return timed(cur.recv(timeout));
    }
    let mut origin = origin;
    if let Some(o) = origin.as_mut().filter(|o| !o.reader.buffer().is_empty()) {
        return Ok(Event::Origin(o.recv(None)?));
    }
    if control.is_none() && origin.is_none() && signals.is_none() {
        return timed(cur.recv(timeout));
    }
    let pollfd = |fd: i32| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = [
        pollfd(cur.reader.get_ref().as_raw_fd()),
        pollfd(control.map_or(-1, |c| c.fd())),
        pollfd(
            origin
                .as_ref()
                .map_or(-1, |o| o.reader.get_ref().as_raw_fd()),
        ),
        pollfd(signals.unwrap_or(-1)),
    ];
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    // SAFETY: four valid pollfd entries (poll skips negative descriptors).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == ErrorKind::Interrupted {
            Ok(Event::Idle)
        } else {
            Err(e)
        };
    }
    if n == 0 {
        return Ok(Event::Timeout);
    }
    if let Some(fd) = signals.filter(|_| fds[3].revents != 0) {
        return Ok(Event::Signals(crate::forward::take(fd)));
    }
    if fds[1].revents & libc::POLLIN != 0 {
        if let Some((s, r)) = control.and_then(|c| c.accept()) {
            return Ok(Event::Client(s, r));
        }
    }
    if fds[2].revents != 0 {
        if let Some(o) = origin {
            return Ok(Event::Origin(o.recv(None).unwrap_or(None)));
        }
    }
    if fds[0].revents != 0 {
        return timed(cur.recv(None));
    }
    Ok(Event::Idle)
}

/// Replaces the current process with the one it migrated to; an adopted
/// original stays connected as the origin.
fn hand_over(cur: &mut Proc, next: Proc, origin: &mut Option<Proc>) {
    let old = std::mem::replace(cur, next);
    if old.adopted() && origin.is_none() {
        *origin = Some(old);
    }
}

/// Tells an adopted program's original process how the program ended, so
/// that it ends the same way for its parent.
fn report_to_origin(origin: Option<Proc>, code: i32, signal: Option<i32>) {
    if let Some(mut o) = origin {
        match signal {
            Some(sig) => o.send(&format!("SIGNAL {sig}\n")),
            None => o.send(&format!("STATUS {code}\n")),
        }
    }
}

/// One line from a runtime's control socket; None once the process is
/// gone. A process that dies before reading what we sent it (a signal
/// between `GO` and its read) resets the connection instead of closing it:
/// that is an end too, and its exit status tells how it ended.
fn read_runtime_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(line.trim_end().to_string())),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(None),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err(std::io::Error::new(ErrorKind::TimedOut, "timeout"))
        }
        Err(e) => Err(e),
    }
}

/// How the supervisor holds a process.
enum Handle {
    /// Started by this hcontainer.
    Child(Child),
    /// Started plainly and adopted (`hcontainer adopt`): not our child, so
    /// its exit status goes to its own parent.
    Adopted(u32),
}

/// One running variant with its control socket.
struct Proc {
    isa: Isa,
    handle: Handle,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    started: Instant,
    /// Pipes and sockets the parked process handed over with its dump, by
    /// their numbers in it: the destination gets them at the same numbers.
    passed: Vec<(i32, OwnedFd)>,
}

/// Where a variant finds its control socket (clear of the numbers passed
/// descriptors take; the runtime moves it higher still).
const CTL_FD: i32 = 899;

impl Proc {
    /// Receives the descriptors announced by `FDS <n>` (runtime/native/hcrt.c).
    fn receive_fds(&mut self, n: usize) -> std::io::Result<()> {
        self.passed.clear();
        self.send("SENDFDS\n");
        let fd = self.reader.get_ref().as_raw_fd();
        let mut text = vec![0u8; 4096];
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<i32>()) as u32) } as usize;
        let mut control = vec![0u8; space];
        let mut iov = libc::iovec {
            iov_base: text.as_mut_ptr().cast(),
            iov_len: text.len(),
        };
        // SAFETY: msghdr is plain data; zero is a valid starting value.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        mh.msg_control = control.as_mut_ptr().cast();
        mh.msg_controllen = space as _;
        // SAFETY: every buffer mh points to lives until the call returns.
        let got = unsafe { libc::recvmsg(fd, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if got <= 0 {
            return Err(std::io::Error::other("the runtime sent no descriptors"));
        }
        let numbers: Vec<i32> = String::from_utf8_lossy(&text[..got as usize])
            .trim_end()
            .split(',')
            .filter_map(|x| x.parse().ok())
            .collect();
        let mut fds = Vec::new();
        // SAFETY: walking the control messages recvmsg filled in.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&mh);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c) as *const i32;
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                    for i in 0..count {
                        fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                c = libc::CMSG_NXTHDR(&mh, c);
            }
        }
        if fds.len() != numbers.len() {
            return Err(std::io::Error::other(format!(
                "the runtime announced {} descriptors and sent {}",
                numbers.len(),
                fds.len()
            )));
        }
        self.passed = numbers.into_iter().zip(fds).collect();
        Ok(())
    }

    fn send(&mut self, msg: &str) {
        // A process that already died cannot be told anything; its exit
        // status says the rest.
        let _ = self.writer.write_all(msg.as_bytes());
    }

    /// Next line from the runtime; None on EOF; Err(TimedOut) on timeout.
    fn recv(&mut self, timeout: Option<Duration>) -> std::io::Result<Option<String>> {
        self.reader.get_ref().set_read_timeout(timeout)?;
        read_runtime_line(&mut self.reader)
    }

    fn id(&self) -> u32 {
        match &self.handle {
            Handle::Child(c) => c.id(),
            Handle::Adopted(pid) => *pid,
        }
    }

    fn adopted(&self) -> bool {
        matches!(self.handle, Handle::Adopted(_))
    }

    fn kill(&self, sig: i32) {
        // SAFETY: kill on the process's own pid.
        unsafe { libc::kill(self.id() as i32, sig) };
    }

    fn wait(&mut self) -> i32 {
        self.wait_status().0
    }

    /// Exit code (128 + signal for a signal) and the signal, if one ended it.
    fn wait_status(&mut self) -> (i32, Option<i32>) {
        match &mut self.handle {
            Handle::Child(c) => match c.wait() {
                Ok(s) => match s.signal() {
                    Some(sig) => (128 + sig, Some(sig)),
                    None => (s.code().unwrap_or(0), None),
                },
                Err(_) => (127, None),
            },
            Handle::Adopted(pid) => {
                // Its parent reaps it; we only wait until it is gone.
                let proc_dir = PathBuf::from(format!("/proc/{pid}"));
                let deadline = Instant::now() + Duration::from_secs(5);
                while proc_dir.exists() && Instant::now() < deadline {
                    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
                    if stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (0, None)
            }
        }
    }
}

fn spawn(
    bin: &Binary,
    isa: Isa,
    args: &[OsString],
    workdir: &Path,
    env: &[(&str, String)],
    pass: &[(i32, OwnedFd)],
) -> anyhow::Result<Proc> {
    let exe = bin.runnable(isa, workdir)?;
    let (ours, theirs) = UnixStream::pair()?;
    let arg0 = bin.path.as_os_str().to_owned();
    let mut cmd = if Some(isa) == Isa::host() {
        let mut c = Command::new(&exe);
        c.arg0(&arg0);
        c
    } else {
        let qemu = which::which(isa.info().qemu).map_err(|_| {
            anyhow::anyhow!("{} not found: running the {isa} variant on this machine needs qemu-user (run scripts/setup.sh)", isa.info().qemu)
        })?;
        let mut c = Command::new(qemu);
        // For debugging a variant: e.g. HCONTAINER_QEMU_ARGS="-g 1234" and
        // attach gdb-multiarch to the process qemu runs.
        if let Ok(extra) = std::env::var("HCONTAINER_QEMU_ARGS") {
            c.args(extra.split_whitespace());
        }
        c.arg("-0").arg(&arg0).arg(&exe);
        c
    };
    cmd.args(args);
    // The program sees its own environment; hcontainer's settings go only
    // where they are meant (the runtime strips them before main).
    cmd.env_remove("HCONTAINER_FAULT");
    cmd.env("HCONTAINER_CTL_FD", CTL_FD.to_string());
    // In the child: the control socket at CTL_FD, the passed descriptors at
    // their old numbers (staged above 1000 first so no move clobbers
    // another), all surviving exec.
    let ctl = theirs.as_raw_fd();
    let moves: Vec<(i32, i32)> = pass.iter().map(|(n, fd)| (fd.as_raw_fd(), *n)).collect();
    // SAFETY: the closure only calls dup2 and close, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(ctl, CTL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (i, (src, _)) in moves.iter().enumerate() {
                if libc::dup2(*src, 1000 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, (_, to)) in moves.iter().enumerate() {
                if libc::dup2(1000 + i as i32, *to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(1000 + i as i32);
            }
            Ok(())
        })
    };
    cmd.env("HCONTAINER_DIR", workdir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start the {isa} variant ({}): {e}", exe.display()))?;
    drop(theirs);
    let writer = ours.try_clone()?;
    Ok(Proc {
        isa,
        handle: Handle::Child(child),
        reader: BufReader::new(ours),
        writer,
        started: Instant::now(),
        passed: Vec::new(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn ns_ms(ns: u64) -> String {
    ms(Duration::from_nanos(ns))
}

/// `hcontainer restore DIR`: continues the checkpointed program on `isa`
/// and returns its exit code.
pub fn restore(dir: &Path, isa: Option<Isa>) -> anyhow::Result<i32> {
    let m = control::Manifest::read(dir)?;
    let bin = Binary::open(&m.app).map_err(|e| {
        anyhow::anyhow!(
            "the program this checkpoint was taken from, {}, cannot be opened: {e}",
            m.app.display()
        )
    })?;
    let have: String = bin
        .meta
        .build_id
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if have != m.build_id {
        anyhow::bail!(
            "{} was rebuilt since this checkpoint was taken (build {have}, checkpoint of build {}): restore needs the same build",
            m.app.display(),
            m.build_id
        );
    }
    let snap_path = dir.join(control::CHECKPOINT_SNAPSHOT);
    let bytes =
        std::fs::read(&snap_path).map_err(|e| anyhow::anyhow!("{}: {e}", snap_path.display()))?;
    let snap = Image::decode(&bytes, true)
        .map_err(|e| anyhow::anyhow!("{}: damaged checkpoint: {e}", snap_path.display()))?;
    let listeners = relisten(&snap)?;
    let isa = isa.or_else(Isa::host).unwrap_or(Isa::PRIMARY);
    let args: Vec<OsString> = m.args.iter().map(OsString::from).collect();
    let opts = RunOptions {
        isa: Some(isa),
        restore: Some(std::path::absolute(&snap_path)?),
        ..RunOptions::default()
    };
    run_passing(&bin, &args, &opts, listeners)
}

/// Runs `bin` and returns its exit code.
pub fn run(bin: &Binary, args: &[OsString], opts: &RunOptions) -> anyhow::Result<i32> {
    run_passing(bin, args, opts, Vec::new())
}

/// Runs `bin` with the descriptors `pass` at their numbers (given away:
/// hcontainer keeps no copy, or a closed listener would stay bound).
fn run_passing(
    bin: &Binary,
    args: &[OsString],
    opts: &RunOptions,
    pass: Vec<(i32, OwnedFd)>,
) -> anyhow::Result<i32> {
    let mut route = opts.migrate.clone();
    if route.is_empty() {
        route.push(opts.isa.or_else(Isa::host).unwrap_or(Isa::PRIMARY));
    }
    if let (Some(isa), Some(first)) = (opts.isa, route.first()) {
        if isa != *first {
            anyhow::bail!("--isa {isa} conflicts with --migrate, which starts on {first}");
        }
    }
    for isa in &route {
        bin.variant(*isa)?;
    }
    let tmp = tempfile::Builder::new().prefix("hcontainer-").tempdir()?;
    let workdir = opts
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&workdir)?;
    let migrations = route.len() - 1;
    let mut first_env = trigger_env(opts, migrations);
    if let Some(snap) = &opts.restore {
        first_env.push(("HCONTAINER_RESTORE", snap.display().to_string()));
    }
    let cur = if opts.restore.is_none() {
        spawn(bin, route[0], args, &workdir, &first_env, &pass)?
    } else {
        match spawn_restoring(|| spawn(bin, route[0], args, &workdir, &first_env, &pass))? {
            Ok((mut cur, ns)) => {
                eprintln!(
                    "hcontainer: restored on {}: restore {} (+{} process start)",
                    cur.isa,
                    ns_ms(ns),
                    ms(cur
                        .started
                        .elapsed()
                        .saturating_sub(Duration::from_nanos(ns)))
                );
                cur.send("GO\n");
                cur
            }
            Err((why, code)) => {
                anyhow::bail!("restore on {} failed (status {code}): {why}", route[0])
            }
        }
    };
    drop(pass);
    let sup = Supervision {
        bin,
        args,
        opts,
        route: &route,
        workdir: &workdir,
    };
    supervise(&sup, cur, Control::listen().ok())
}

/// A refused attempt whose dump was smaller than this (a few milliseconds
/// of writing) may be retried at the next few migration points.
const CHEAP_DUMP: u64 = 16 << 20;

/// How soon a runtime that answered `BUSY` is signalled again: how late a
/// migration can come after the function that held it returned, against
/// patching the polls on and off again (a signal and two `mprotect`s).
const BUSY_RECHECK: Duration = Duration::from_millis(10);

/// How long the program runs before the next attempt after `refused`
/// refusals, the last of which wrote a dump of `dump_bytes`: 2, 4 ... 64
/// ms, and at least a millisecond per 256 KiB dumped — about four times
/// what writing it takes (1 GiB/s here) — so refused attempts take at most
/// about a fifth of the program's time while a migration still follows
/// soon after an unmigratable stretch. (xz -9, its 674 MiB dumped each
/// time while its unmigratable match finder was on the stack, ran 12
/// minutes instead of 2 seconds, retried back to back.) The dump's size,
/// not its time, so the spacing does not depend on the machine's load.
fn retry_delay(refused: u64, dump_bytes: u64) -> Duration {
    Duration::from_millis(2 << refused.min(5)).max(Duration::from_millis(dump_bytes >> 18))
}

/// Why a migration point declined without writing a dump: the function
/// hcc names in `__hc_unmigratable` (`addr`, hex) was on the stack, calling
/// out. Functions have one address in every variant; hcc names the library
/// functions that call back into the program (qsort) likewise around its
/// calls of them, found by their address in the running variant.
fn unmigratable_on_stack(bin: &Binary, isa: Isa, addr: &str) -> String {
    let at = u64::from_str_radix(addr.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    if let Some(f) = bin.meta.functions.iter().find(|f| f.addr == at) {
        if !f.reason.is_empty() {
            return format!(
                "{} is on the stack and is not migratable: {}",
                f.name, f.reason
            );
        }
    }
    // hcc also names the libc functions that call back into the program
    // (qsort and its comparator): their address in the running variant.
    let library = bin
        .variant(isa)
        .ok()
        .and_then(|exe| crate::binary::symbolize(exe, at))
        .and_then(|s| s.strip_suffix("+0x0").map(str::to_string));
    match library {
        Some(name) => format!(
            "the program is inside {name}, a library function that calls back into it: \
             frames under {name} cannot migrate; it can once {name} has returned"
        ),
        None => format!("a function that cannot migrate ({addr}) is on the stack"),
    }
}

/// The seccomp mode and filter count /proc/PID/status shows (`self` too).
fn seccomp_of(pid: &str) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("Seccomp:"), field("Seccomp_filters:"))
}

/// Why process `pid` cannot migrate, if it runs under a seccomp filter of
/// its own: hcontainer cannot install the filter again in a destination,
/// and the filter may kill the process for a system call its dump makes.
/// Filters it inherited from hcontainer's own context (a service's
/// `SystemCallFilter=`) are no reason: a destination inherits them too.
/// The runtime takes no requests once a filter is in (hcrt.c,
/// `seccomp_install`), so none is sent.
pub fn seccomp_refusal(pid: u32) -> Option<String> {
    let (mode, filters) = seccomp_of(&pid.to_string());
    let (own_mode, own_filters) = seccomp_of("self");
    if mode == 0 || (mode == own_mode && filters <= own_filters) {
        return None;
    }
    let what = if mode == 1 { "strict mode" } else { "a filter" };
    Some(format!(
        "the program put itself under seccomp ({what}; Seccomp: {mode} in /proc/{pid}/status), which hcontainer cannot set up again on a destination and which may kill the process for a system call of its dump: it cannot migrate or be checkpointed from now on"
    ))
}

/// How long a request waits for a migration point before its client hears
/// what the program is doing.
const WAIT_NOTE: Duration = Duration::from_secs(3);

/// The system call process `pid` waits in (/proc/PID/syscall), e.g.
/// "read (descriptor 0)"; None while it runs or if that cannot be read.
/// For a program under qemu-user these are qemu's calls on its behalf.
fn waiting_in(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut fields = text.split_whitespace();
    let nr: libc::c_long = fields.next()?.parse().ok()?;
    let arg0 = fields
        .next()
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    let with_fd: &[(libc::c_long, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_readv, "readv"),
        (libc::SYS_pread64, "pread64"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_write, "write"),
        (libc::SYS_writev, "writev"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_flock, "flock"),
        (libc::SYS_fcntl, "fcntl"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
    ];
    let without: &[(libc::c_long, &str)] = &[
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
    ];
    if let Some((_, name)) = with_fd.iter().find(|(n, _)| *n == nr) {
        return Some(match arg0 {
            Some(fd) => format!("{name} (descriptor {fd})"),
            None => name.to_string(),
        });
    }
    Some(match without.iter().find(|(n, _)| *n == nr) {
        Some((_, name)) => name.to_string(),
        None => format!("number {nr}"),
    })
}

/// Environment for a variant: what triggers its migrations.
fn trigger_env(opts: &RunOptions, remaining: usize) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if remaining > 0 {
        if let Some(n) = opts.at_point {
            env.push(("HCONTAINER_AT_POINT", n.to_string()));
        }
    }
    // The signal asks for a migration at the next point: --every sends it,
    // so do retries after refused attempts and requests from `hcontainer
    // migrate/checkpoint PID`.
    env.push(("HCONTAINER_SIGNAL", MIGRATE_SIGNAL.to_string()));
    env
}

/// What a supervision is about.
struct Supervision<'a> {
    bin: &'a Binary,
    args: &'a [OsString],
    opts: &'a RunOptions,
    /// ISAs to visit (the first is where the program is now).
    route: &'a [Isa],
    workdir: &'a Path,
}

/// Follows the running program `cur` until it ends, migrating it along the
/// route and answering requests; returns its exit code.
fn supervise(
    sup: &Supervision,
    mut cur: Proc,
    mut control: Option<Control>,
) -> anyhow::Result<i32> {
    let Supervision {
        bin,
        args,
        opts,
        route,
        workdir,
    } = *sup;
    let workdir = workdir.to_path_buf();
    let migrations = route.len() - 1;
    let trigger_env = |remaining: usize| trigger_env(opts, remaining);
    // Requests from other hcontainer commands; without the socket (an
    // unwritable TMPDIR) the program still runs, it just cannot be reached.
    if let Some(c) = control.as_mut() {
        c.follow(cur.id());
    }
    // Signals sent to hcontainer are for the program (none lost if the
    // handlers cannot be installed: they end hcontainer as before).
    let signals = crate::forward::install().ok();
    // An adopted program's original process, parked for its parent once the
    // program has moved on: it forwards signals and gets the exit status.
    let mut origin: Option<Proc> = None;
    let mut pending: Option<(UnixStream, Request, Instant)> = None;
    // The pending request's client was told where the program waits.
    let mut noted = false;
    let mut done = 0usize;
    let mut requested = false;
    // The progress bar of a large dump under way (`DUMPING`).
    let mut dump_watch: Option<FileWatch> = None;
    // Refused attempts since the last migration: reported once per reason,
    // retried with backoff so a long stretch of unmigratable code (a libc
    // callback, say) costs little.
    let mut refused = 0u64;
    let mut last_reason = String::new();
    let mut retry_at: Option<Instant> = None;
    // The runtime declined for now (`BUSY`: a function that cannot migrate
    // is on the stack, its polls are off): when to signal it again.
    let mut recheck_at: Option<Instant> = None;
    // The program installed a seccomp filter: no more requests.
    let mut sandboxed = false;
    loop {
        // Once an attempt was refused, retries go by `retry_at` (the
        // backoff), not by the time on this ISA, which is long past.
        let every_due = match opts.every {
            Some(every) if done < migrations && !requested && !sandboxed && refused == 0 => {
                Some(cur.started + every)
            }
            _ => None,
        };
        let signal_due = recheck_at.or_else(|| {
            [every_due, retry_at.filter(|_| !requested)]
                .into_iter()
                .flatten()
                .min()
        });
        // A request still waiting after WAIT_NOTE: say where the program is.
        let note_due = pending
            .as_ref()
            .filter(|_| !noted)
            .map(|(_, _, since)| *since + WAIT_NOTE);
        let due = [signal_due, note_due].into_iter().flatten().min();
        let timeout = due.map(|t| {
            t.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let msg = match next_event(
            &mut cur,
            control.as_ref(),
            origin.as_mut(),
            signals,
            timeout,
        )? {
            Event::Origin(Some(line)) => {
                // A signal sent to the original PID, for the program.
                if let Some(sig) = line.strip_prefix("KILL ").and_then(|n| n.parse().ok()) {
                    cur.kill(sig);
                }
                continue;
            }
            Event::Origin(None) => {
                // The original process can only die by SIGKILL: the user
                // meant the program.
                eprintln!(
                    "hcontainer: the program's original process was killed; ending the program"
                );
                origin = None;
                cur.kill(libc::SIGKILL);
                continue;
            }
            Event::Timeout => {
                if let Some((client, _, since)) = pending.as_mut().filter(|_| !noted) {
                    if since.elapsed() >= WAIT_NOTE {
                        noted = true;
                        if let Some(call) = waiting_in(cur.id()) {
                            answer(client, &format!("the program has waited {:.0?} in the system call {call}, made inside library code (getchar, say, or fgets with half a line), where it cannot migrate: it migrates once that call returns", since.elapsed()));
                        }
                    }
                }
                if signal_due.is_none_or(|t| t > Instant::now()) {
                    continue;
                }
                if let Some(why) = seccomp_refusal(cur.id()) {
                    // The route cannot go on; the program runs to its end.
                    eprintln!(
                        "hcontainer: not migrating any more: {why}; the program continues on {}",
                        cur.isa
                    );
                    sandboxed = true;
                    retry_at = None;
                    continue;
                }
                cur.kill(MIGRATE_SIGNAL);
                requested = true;
                retry_at = None;
                recheck_at = None;
                continue;
            }
            Event::Signals(sigs) => {
                // To the process the program runs in now; one that came
                // during a migration waited until it was decided.
                for sig in sigs {
                    cur.kill(sig);
                }
                continue;
            }
            Event::Idle => continue,
            Event::Client(mut client, req) => {
                let refusal = match &req {
                    Err(why) => Some(why.clone()),
                    Ok(_) if pending.is_some() => {
                        Some("another request for this program is in progress".into())
                    }
                    Ok(Request::Migrate(isa)) if *isa == cur.isa => {
                        Some(format!("the program already runs on {isa}"))
                    }
                    Ok(r) => seccomp_refusal(cur.id())
                        .map(|why| format!("{why}; the program continues on {}", cur.isa))
                        .or_else(|| match r {
                            Request::Migrate(isa) => bin.variant(*isa).err().map(|e| e.to_string()),
                            Request::Checkpoint { .. } => None,
                        }),
                };
                match (refusal, req) {
                    (Some(why), _) => answer(&mut client, &format!("ERR {why}")),
                    (None, Ok(r)) => {
                        answer(
                            &mut client,
                            "waiting for the program's next migration point",
                        );
                        pending = Some((client, r, Instant::now()));
                        noted = false;
                        cur.kill(MIGRATE_SIGNAL);
                        requested = true;
                    }
                    (None, Err(_)) => unreachable!("a bad request is refused above"),
                }
                continue;
            }
            Event::Line(m) => m,
        };
        let Some(msg) = msg else {
            if let Some((mut client, _, _)) = pending.take() {
                answer(&mut client, "ERR the program exited first");
            }
            // Read before the process is reaped (a zombie still shows it).
            let seccomp = if done < migrations && !sandboxed {
                seccomp_refusal(cur.id())
            } else {
                None
            };
            let (code, sig) = cur.wait_status();
            report_to_origin(origin, code, sig);
            if let Some(why) = seccomp {
                eprintln!("hcontainer: {why}");
            }
            if refused > 0 {
                eprintln!(
                    "hcontainer: {refused} migration attempts were refused (last: {last_reason})"
                );
            }
            if done < migrations {
                eprintln!(
                    "hcontainer: the program exited (status {code}) before migration {} of {migrations} ({} -> {}) was reached",
                    done + 1,
                    route[done],
                    route[done + 1]
                );
            }
            return Ok(code);
        };
        if msg == "BUSY" {
            // Not an attempt: the request stands, and the runtime looks
            // again when signalled (until it refuses with NOTHERE).
            requested = false;
            recheck_at = Some(Instant::now() + BUSY_RECHECK);
            continue;
        }
        if let Some(rest) = msg.strip_prefix("DUMPING ") {
            // A large dump under way: its size shows how far it is.
            if let Some((total, p)) = rest.split_once(' ') {
                let total = total.parse().unwrap_or(0);
                dump_watch = Some(FileWatch::start(p.into(), total, "dumping memory"));
            }
            continue;
        }
        if msg.starts_with("DUMP") {
            // Done (or failed): the bar goes before the summary line.
            drop(dump_watch.take());
        }
        if let Some(n) = msg.strip_prefix("FDS ") {
            if let Err(e) = cur.receive_fds(n.parse().unwrap_or(0)) {
                eprintln!("hcontainer: {e}");
            }
            continue;
        }
        let from = cur.isa;
        let (path, dump_failure) = if let Some(p) = msg.strip_prefix("DUMP ") {
            (p, None)
        } else if let Some(why) = msg.strip_prefix("DUMPFAIL ") {
            (
                "",
                Some(format!("the {from} process could not dump: {why}")),
            )
        } else if let Some(addr) = msg.strip_prefix("NOTHERE ") {
            ("", Some(unmigratable_on_stack(bin, from, addr)))
        } else {
            eprintln!("hcontainer: unexpected message from the runtime: {msg:?}");
            continue;
        };
        requested = false;
        // What the attempt cost: mostly writing the dump, as large as the
        // program's memory.
        let dump_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if let Some((mut client, req, since)) = pending.take() {
            let mut settled = false;
            let result = match (&dump_failure, &req) {
                (Some(why), _) => Err(why.clone()),
                (None, Request::Migrate(isa)) => {
                    let target = Target {
                        bin,
                        args,
                        workdir: &workdir,
                        isa: *isa,
                        env: trigger_env(0),
                        keep: opts.keep.is_some(),
                    };
                    match migrate(target, &mut cur, Path::new(path))? {
                        Outcome::Moved(next, report) => {
                            hand_over(&mut cur, next, &mut origin);
                            if let Some(c) = control.as_mut() {
                                c.follow(cur.id());
                            }
                            Ok(format!(
                                "migrated {from} -> {isa} (now process {}): {report}",
                                cur.id()
                            ))
                        }
                        Outcome::Refused(why) => Err(why),
                    }
                }
                (None, Request::Checkpoint { dir, leave_running }) => {
                    checkpoint(bin, args, Path::new(path), dir, from, !leave_running).map_err(|e| {
                        // Waiting would not change the program's descriptors.
                        settled = e.downcast_ref::<Uncarried>().is_some();
                        format!("{e:#}")
                    })
                }
            };
            if opts.keep.is_none() && !path.is_empty() {
                let _ = std::fs::remove_file(path);
            }
            // Our copies of its pipes would keep their readers from EOF.
            cur.passed.clear();
            match result {
                Ok(summary) => {
                    eprintln!("hcontainer: {summary}");
                    answer(&mut client, &format!("OK {summary}"));
                    refused = 0;
                    retry_at = None;
                    last_reason.clear();
                    if let Request::Checkpoint { leave_running, .. } = req {
                        if !leave_running {
                            cur.send("EXIT\n");
                            if cur.adopted() {
                                // Its original process waits for a status.
                                cur.send("STATUS 0\n");
                            }
                            report_to_origin(origin, 0, None);
                            cur.wait();
                            eprintln!("hcontainer: the program stopped after its checkpoint");
                            return Ok(0);
                        }
                        cur.send("CONT 0\n");
                    }
                }
                Err(why) if !settled && since.elapsed() < REQUEST_PATIENCE => {
                    if reason_key(&why) != reason_key(&last_reason) {
                        answer(
                            &mut client,
                            &format!("not possible at this point: {why}; trying again"),
                        );
                        last_reason = why;
                    }
                    refused += 1;
                    cur.send("CONT 0 UNLOCK\n");
                    retry_at = Some(Instant::now() + retry_delay(refused, dump_bytes));
                    pending = Some((client, req, since));
                }
                Err(why) => {
                    let waited = if settled {
                        String::new()
                    } else {
                        format!("gave up after {REQUEST_PATIENCE:?}; ")
                    };
                    answer(
                        &mut client,
                        &format!("ERR {why} ({waited}the program continues on {from})"),
                    );
                    cur.send("CONT 0\n");
                }
            }
            continue;
        }
        if done >= migrations {
            cur.passed.clear();
            cur.send("CONT 0\n");
            continue;
        }
        let dst = route[done + 1];
        let target = Target {
            bin,
            args,
            workdir: &workdir,
            isa: dst,
            env: trigger_env(migrations - done - 1),
            keep: opts.keep.is_some(),
        };
        let outcome = match dump_failure {
            Some(why) => Outcome::Refused(why),
            None => migrate(target, &mut cur, Path::new(path))?,
        };
        cur.passed.clear();
        match outcome {
            Outcome::Moved(next, report) => {
                let after = if refused > 0 {
                    format!(" (after {refused} refused attempts)")
                } else {
                    String::new()
                };
                eprintln!(
                    "hcontainer: migrated {} -> {dst} ({}/{migrations}): {report}{after}",
                    route[done],
                    done + 1
                );
                hand_over(&mut cur, next, &mut origin);
                done += 1;
                refused = 0;
                retry_at = None;
                last_reason.clear();
            }
            Outcome::Refused(why) => {
                if reason_key(&why) != reason_key(&last_reason) {
                    eprintln!(
                        "hcontainer: migration {} -> {dst} not possible at this point: {why}; the program continues on {} and tries again",
                        route[done], route[done]
                    );
                    last_reason = why;
                }
                refused += 1;
                // The next attempt after 1, 2, 4 ... 64 migration points (the
                // same points in every run), then after 2, 4 ... 64 ms of
                // running at full speed: an attempt costs a dump and a
                // rewrite, and counting points down runs every poll's slow
                // path, so a long unmigratable stretch must pay neither often.
                // Attempts that dump much memory go by time at once
                // (`retry_delay`).
                // UNLOCK: a dump that waited for a record lock is tried
                // again as soon as the program releases one, too.
                if refused <= 7 && dump_bytes < CHEAP_DUMP {
                    cur.send(&format!("CONT {} UNLOCK\n", 1u64 << (refused - 1)));
                } else {
                    cur.send("CONT 0 UNLOCK\n");
                    retry_at =
                        Some(Instant::now() + retry_delay(refused.saturating_sub(7), dump_bytes));
                }
            }
        }
        if opts.keep.is_none() && !path.is_empty() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Fault injection for tests of the error paths, in the spirit of CRIU's
/// CRIU_FAULT: `HCONTAINER_FAULT` = `dump-truncate`, `dump-corrupt`,
/// `dump-foreign` (damage the next dump before it is read) or `restore-exit`
/// (the next destination dies in the middle of its restore). Each applies to
/// the first migration attempt only, so the retry shows recovery.
fn take_fault() -> Option<String> {
    static USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let f = std::env::var("HCONTAINER_FAULT").ok()?;
    (!USED.swap(true, std::sync::atomic::Ordering::SeqCst)).then_some(f)
}

fn inject_dump_fault(fault: Option<&str>, dump: &Path) -> std::io::Result<()> {
    let Some(f) = fault else { return Ok(()) };
    let mut data = std::fs::read(dump)?;
    match f {
        "dump-truncate" => data.truncate(data.len() / 2),
        "dump-corrupt" => {
            // The first record's kind: an unknown record.
            if data.len() > 33 {
                data[32] = 0x7f;
            }
        }
        "dump-foreign" => {
            // The build id: a dump of some other program.
            for b in data.iter_mut().skip(16).take(16) {
                *b ^= 0x5a;
            }
        }
        _ => return Ok(()),
    }
    std::fs::write(dump, data)
}

/// A dump, mapped rather than read: hundreds of MiB are not copied, and the
/// source is parked, so the file does not change while it is mapped.
fn map_file(path: &Path) -> std::io::Result<memmap2::Mmap> {
    let f = std::fs::File::open(path)?;
    // SAFETY: the file is hcontainer's own dump, written once by the parked
    // source and not modified or truncated while this mapping lives.
    unsafe { memmap2::Mmap::map(&f) }
}

/// Writes a checkpoint of the parked process's dump into `dir`: the
/// ISA-neutral snapshot and a manifest (docs/FORMATS.md §8).
fn checkpoint(
    bin: &Binary,
    args: &[OsString],
    dump_path: &Path,
    dir: &Path,
    isa: Isa,
    stop: bool,
) -> anyhow::Result<String> {
    let raw = map_file(dump_path)?;
    let dump = Image::decode(&raw, false).map_err(|e| anyhow::anyhow!("damaged dump: {e}"))?;
    let uncarried = uncarried(&dump);
    if stop && !uncarried.is_empty() {
        return Err(Uncarried(uncarried.join("; ")).into());
    }
    let snap = rewrite::rewrite(bin, &dump)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let memory: usize = snap.regions.iter().map(|r| r.data.len()).sum();
    let manifest = control::Manifest {
        format: "hcontainer-checkpoint".into(),
        version: control::CHECKPOINT_VERSION,
        app: std::fs::canonicalize(&bin.path)?,
        build_id: dump.build_id.iter().map(|b| format!("{b:02x}")).collect(),
        isa: isa.to_string(),
        args: args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        frames: snap.frames.len(),
        memory_bytes: memory,
    };
    // Written under temporary names and renamed: a checkpoint directory
    // holds a whole checkpoint or none.
    let write_with =
        |name: &str, fill: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| -> anyhow::Result<()> {
            let tmp = dir.join(format!(".{name}.tmp"));
            let f = std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
            fill(&mut out)?;
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(name))?;
            Ok(())
        };
    let write = |name: &str, bytes: &[u8]| write_with(name, &|w| w.write_all(bytes));
    // Streamed, not built in memory: a checkpoint can be as large as the program.
    write_with(control::CHECKPOINT_SNAPSHOT, &|w| {
        let mut p = Progress::new(w, memory as u64, "writing the checkpoint");
        snap.encode_to(&mut p)?;
        p.finish();
        Ok(())
    })?;
    write(
        control::CHECKPOINT_MANIFEST,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    let note = if uncarried.is_empty() {
        String::new()
    } else {
        format!(
            " (not in it: {}; a restore takes such descriptors from the restoring process or fails naming them)",
            uncarried.join("; ")
        )
    };
    Ok(format!(
        "checkpoint of the {isa} process written to {}: {} frames, {:.1} MiB{note}",
        dir.display(),
        snap.frames.len(),
        memory as f64 / (1024.0 * 1024.0)
    ))
}

/// Descriptors a checkpoint cannot carry, named for the user. Pipes are
/// not among them: a restore takes them from the restoring process (a
/// program restored into a pipeline writes to it).
fn uncarried(dump: &Image) -> Vec<String> {
    dump.fds
        .iter()
        .filter_map(|f| {
            let kind = f.mode & libc::S_IFMT;
            if kind == libc::S_IFSOCK && listening_tcp(&f.path).is_none() {
                Some(format!(
                    "descriptor {} is a connected or Unix-domain socket ({})",
                    f.fd, f.path
                ))
            } else if kind == libc::S_IFREG && f.locks & FdInfo::LOCK_OPEN_FILE != 0 {
                Some(format!(
                    "descriptor {} holds a lock on its open file (flock) of {}, which stays with the running program (a restore opens the file again, unlocked)",
                    f.fd, f.path
                ))
            } else if kind == libc::S_IFREG && f.path.ends_with(" (deleted)") {
                Some(format!(
                    "descriptor {} is a file deleted while open ({})",
                    f.fd, f.path
                ))
            } else {
                None
            }
        })
        .collect()
}

/// The address of a listening TCP socket, from its description in a dump
/// (`socket:[91] listen tcp 0.0.0.0:8080`, docs/FORMATS.md §6).
fn listening_tcp(path: &str) -> Option<std::net::SocketAddr> {
    path.split_once(" listen tcp ")?.1.parse().ok()
}

/// A checkpoint that would lose a descriptor the program holds.
#[derive(Debug)]
struct Uncarried(String);

impl std::fmt::Display for Uncarried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a checkpoint cannot carry everything the program holds: {}; the program continues (close them first, or take the checkpoint with --leave-running)",
            self.0
        )
    }
}

impl std::error::Error for Uncarried {}

/// Listening TCP sockets of a snapshot, bound anew at their addresses for
/// the restoring process, by descriptor number.
fn relisten(snap: &Image) -> anyhow::Result<Vec<(i32, OwnedFd)>> {
    let mut out = Vec::new();
    for f in &snap.fds {
        let Some(addr) = listening_tcp(&f.path) else {
            continue;
        };
        // std sets SO_REUSEADDR: the checkpointed process's port may still
        // have connections in TIME_WAIT.
        let l = std::net::TcpListener::bind(addr).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {addr} again for descriptor {} ({e}): is another process listening there?",
                f.fd
            )
        })?;
        l.set_nonblocking(f.flags & libc::O_NONBLOCK != 0)?;
        out.push((f.fd, OwnedFd::from(l)));
    }
    Ok(out)
}

/// A refusal's reason without addresses, to report each kind of refusal once.
fn reason_key(why: &str) -> String {
    // Addresses and frame numbers change from one attempt to the next.
    why.split_whitespace()
        .filter(|w| !w.contains("0x") && w.parse::<u64>().is_err())
        .collect::<Vec<_>>()
        .join(" ")
}

enum Outcome {
    Moved(Proc, String),
    Refused(String),
}

/// How the runtime says a region's addresses are taken in the destination
/// (runtime/native/hcrt.c, restore_region).
const ADDRESS_TAKEN: &str = "address range in use in the destination";

/// Starts a process that restores a snapshot (`start`) and waits for it to
/// confirm: the process and its restore time in ns, or why it failed and
/// its exit status. A destination whose own start-up mappings (qemu's,
/// placed at random) happen to cover one of the program's addresses cannot
/// restore; a new process is placed elsewhere, so that one failure is tried
/// again, up to four starts in all.
fn spawn_restoring(
    start: impl Fn() -> anyhow::Result<Proc>,
) -> anyhow::Result<Result<(Proc, u64), (String, i32)>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut p = start()?;
        let why = match p.recv(None) {
            Ok(Some(m)) if m.starts_with("RESTORED ") => {
                let ns = m["RESTORED ".len()..].parse::<u64>().unwrap_or(0);
                return Ok(Ok((p, ns)));
            }
            Ok(Some(m)) => m.strip_prefix("FAIL ").unwrap_or(&m).to_string(),
            _ => "the destination ended without confirming".to_string(),
        };
        let code = p.wait();
        if !why.contains(ADDRESS_TAKEN) || attempts >= 4 {
            return Ok(Err((why, code)));
        }
    }
}

/// What a migration needs besides the source and its dump.
struct Target<'a> {
    bin: &'a Binary,
    args: &'a [OsString],
    workdir: &'a Path,
    isa: Isa,
    /// Environment for the destination (its own migration triggers).
    env: Vec<(&'a str, String)>,
    /// Keep the snapshot file.
    keep: bool,
}

/// One migration of the parked source `src` to `to`.
fn migrate(to: Target, src: &mut Proc, dump_path: &Path) -> anyhow::Result<Outcome> {
    let Target {
        bin,
        args,
        workdir,
        isa: dst,
        env,
        keep,
    } = to;
    let t0 = Instant::now();
    let fault = take_fault();
    inject_dump_fault(fault.as_deref(), dump_path)?;
    let raw = match map_file(dump_path) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::Refused(format!(
                "cannot read the dump {}: {e}",
                dump_path.display()
            )))
        }
    };
    let dump = match Image::decode(&raw, false) {
        Ok(d) => d,
        Err(e) => return Ok(Outcome::Refused(format!("damaged dump: {e}"))),
    };
    let mut snap = match rewrite::rewrite(bin, &dump) {
        Ok(s) => s,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    // Memory stays in the dump: the destination maps it from there, so the
    // snapshot holds only what the rewrite made (frames) and small data.
    snap.memory = Some(MemoryFile {
        path: std::path::absolute(dump_path)?.display().to_string(),
        bytes: &raw,
    });
    // Beside the dump, unless the dump is the source's spare file
    // (`/proc/PID/fd/N`: the program became a user who cannot create files
    // in the working directory).
    let snap_path = if dump_path.starts_with("/proc") {
        workdir.join(format!("dump-{}.snap", src.id()))
    } else {
        dump_path.with_extension("snap")
    };
    let mem: usize = snap.regions.iter().map(|r| r.data.len()).sum();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&snap_path)?);
        snap.encode_to(&mut out)?;
        out.flush()?;
    }
    let rewrite_time = t0.elapsed();
    let mut env = env;
    env.push(("HCONTAINER_RESTORE", snap_path.display().to_string()));
    if fault.as_deref() == Some("restore-exit") {
        env.push(("HCONTAINER_FAULT", "restore-exit".to_string()));
    }
    let t1 = Instant::now();
    let (mut dest, restore_ns) =
        match spawn_restoring(|| spawn(bin, dst, args, workdir, &env, &src.passed))? {
            Ok(started) => started,
            Err((why, code)) => {
                let _ = std::fs::remove_file(&snap_path);
                return Ok(Outcome::Refused(format!(
                    "restore on {dst} failed (status {code}): {why}"
                )));
            }
        };
    let startup = t1
        .elapsed()
        .saturating_sub(Duration::from_nanos(restore_ns));
    // Two-phase: only now may the source go.
    src.send("EXIT\n");
    let status = if src.adopted() {
        // It stays for its parent, with nothing open or mapped: wait for that.
        match src.recv(Some(Duration::from_secs(5))) {
            Ok(Some(m)) if m == "PARKED" => 0,
            _ => 1,
        }
    } else {
        src.wait()
    };
    if status != 0 {
        eprintln!(
            "hcontainer: warning: the {} source exited with status {status} after handing over",
            src.isa
        );
    }
    dest.send("GO\n");
    if !keep {
        let _ = std::fs::remove_file(&snap_path);
    }
    let report = format!(
        "dump {}, rewrite {}, restore {} (+{} process start), {} frames, {:.1} MiB",
        ns_ms(dump.misc.dump_ns),
        ms(rewrite_time),
        ns_ms(restore_ns),
        ms(startup),
        snap.frames.len(),
        mem as f64 / (1024.0 * 1024.0)
    );
    Ok(Outcome::Moved(dest, report))
}

/// The abstract socket name `hcontainer adopt` listens on for `pid`.
fn adopt_name(pid: u32) -> String {
    format!("hcontainer-adopt-{pid}")
}

/// `hcontainer adopt PID`: becomes the supervisor of a program that was
/// started plainly, so `migrate` and `checkpoint` reach it as if
/// `hcontainer run` ran it. `ready` hears once whether that worked; the
/// program's exit code is returned when it ends (0 while it still ends in
/// its original process, whose parent gets the real status).
pub fn adopt(pid: u32, ready: impl FnOnce(Result<(), String>)) -> anyhow::Result<i32> {
    let mut ready = Some(ready);
    let mut fail = |why: String| -> anyhow::Error {
        if let Some(r) = ready.take() {
            r(Err(why.clone()));
        }
        anyhow::anyhow!(why)
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return Err(fail(format!("there is no process {pid}")));
    }
    let exe = std::fs::read_link(proc_dir.join("exe")).map_err(|e| {
        fail(format!(
            "cannot look at process {pid} ({e}): it belongs to another user"
        ))
    })?;
    let bin = Binary::open(&exe).map_err(|e| {
        fail(format!(
            "process {pid} runs {}, which is not a program built by hcc ({e})",
            exe.display()
        ))
    })?;
    let Some(isa) = Isa::host() else {
        return Err(fail("this machine's ISA has no variant support".into()));
    };
    bin.variant(isa).map_err(|e| fail(e.to_string()))?;
    let args: Vec<OsString> = std::fs::read(proc_dir.join("cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .skip(1)
        .filter(|a| !a.is_empty())
        .map(|a| <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(a).to_owned())
        .collect();
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(adopt_name(pid))?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| {
        fail(format!(
            "cannot listen for process {pid} ({e}): is another hcontainer adopting it?"
        ))
    })?;
    listener.set_nonblocking(true)?;
    let tmp = tempfile::Builder::new().prefix("hcontainer-").tempdir()?;
    if let Some(why) = seccomp_refusal(pid) {
        return Err(fail(format!("process {pid}: {why}")));
    }
    // SAFETY: kill with a signal number; the process may ignore it.
    if unsafe { libc::kill(pid as i32, MIGRATE_SIGNAL) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(fail(format!("cannot signal process {pid}: {e}")));
    }
    let deadline = Instant::now() + REQUEST_PATIENCE;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(fail(format!("waiting for process {pid}: {e}"))),
        }
        if !proc_dir.exists() {
            return Err(fail(format!("process {pid} ended")));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "process {pid} did not answer within {REQUEST_PATIENCE:?}: it is either waiting in a system call (it answers at its next migration point, once it runs again) or it handles or blocks signal {MIGRATE_SIGNAL} itself"
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    stream.set_nonblocking(false)?;
    let (peer, peer_user) = peer_cred(&stream).unzip();
    if peer != Some(pid) {
        return Err(fail(format!(
            "process {:?} answered in place of process {pid}",
            peer
        )));
    }
    let writer = stream.try_clone()?;
    let mut cur = Proc {
        isa,
        handle: Handle::Adopted(pid),
        reader: BufReader::new(stream),
        writer,
        started: Instant::now(),
        passed: Vec::new(),
    };
    // A program started as root that has become another user can no
    // longer create its dump in our directory: it becomes the program's.
    if let Some((uid, gid)) = peer_user.filter(|&(uid, _)| uid != 0) {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid)).map_err(|e| {
                fail(format!(
                    "cannot give {} to user {uid}: {e}",
                    tmp.path().display()
                ))
            })?;
        }
    }
    cur.send(&format!("DIR {}\n", tmp.path().display()));
    match cur.recv(Some(Duration::from_secs(5))) {
        Ok(Some(m)) if m == "ADOPTED" => {}
        other => return Err(fail(format!("process {pid} did not confirm: {other:?}"))),
    }
    let mut control = Control::listen().map_err(|e| {
        fail(format!(
            "cannot create the control socket in {}: {e}",
            std::env::temp_dir().display()
        ))
    })?;
    // Users know the program by its original PID, wherever it runs now.
    control.alias(pid);
    if let Some(r) = ready.take() {
        r(Ok(()));
    }
    let opts = RunOptions::default();
    let sup = Supervision {
        bin: &bin,
        args: &args,
        opts: &opts,
        route: &[isa],
        workdir: tmp.path(),
    };
    supervise(&sup, cur, Some(control))
}

/// The process at the other end of `s` and its effective user and group
/// when it connected.
fn peer_cred(s: &UnixStream) -> Option<(u32, (u32, u32))> {
    // SAFETY: ucred is plain data.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for getsockopt to fill in.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some((cred.pid as u32, (cred.uid, cred.gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_that_dies_with_our_message_unread_has_ended() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"RESTORED 5\n").unwrap();
        let mut reader = BufReader::new(ours.try_clone().unwrap());
        assert_eq!(
            read_runtime_line(&mut reader).unwrap().as_deref(),
            Some("RESTORED 5")
        );
        // `GO` sent, never read: closing resets the connection.
        (&ours).write_all(b"GO\n").unwrap();
        drop(theirs);
        assert_eq!(read_runtime_line(&mut reader).unwrap(), None);
    }
}
