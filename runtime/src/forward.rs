//! Signals sent to hcontainer itself (`kill PID`, `timeout`, a service
//! manager stopping it) are meant for the program it runs: they are passed
//! on to the program's current process, and hcontainer ends when the
//! program does, with its status. Before, SIGTERM ended hcontainer and left
//! the program running, orphaned.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// The write end of the pipe that wakes the supervisor's poll.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// Signals received and not yet passed on, one bit each.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// What is passed on. Not SIGCHLD, SIGPIPE (hcontainer's own business),
/// SIGTSTP/SIGTTIN/SIGTTOU (job control acts on the whole process group).
const FORWARDED: [i32; 9] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGALRM,
    libc::SIGCONT,
];

extern "C" fn on_signal(sig: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only what a process sent to hcontainer: the terminal's signals
    // (Ctrl-C, SI_KERNEL) reach the program directly, being of the same
    // process group, and must not arrive twice.
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code != libc::SI_USER && code != libc::SI_QUEUE {
        return;
    }
    PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe already wakes.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Installs the handlers (once per process); returns the descriptor that
/// turns readable when a signal waits to be passed on.
pub fn install() -> std::io::Result<RawFd> {
    static READ: AtomicI32 = AtomicI32::new(-1);
    let fd = READ.load(Ordering::SeqCst);
    if fd >= 0 {
        return Ok(fd);
    }
    let mut p = [0i32; 2];
    // SAFETY: p has room for the two descriptors.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    WAKE.store(p[1], Ordering::SeqCst);
    READ.store(p[0], Ordering::SeqCst);
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction with our handler, SA_SIGINFO for the
        // sender's code, SA_RESTART so blocking reads elsewhere go on.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    Ok(p[0])
}

/// The signals received since the last call (the wake pipe drained).
pub fn take(fd: RawFd) -> Vec<i32> {
    let mut buf = [0u8; 64];
    // SAFETY: reads into buf from our own non-blocking pipe.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    let bits = PENDING.swap(0, Ordering::SeqCst);
    (1..64).filter(|s| bits & (1 << s) != 0).collect()
}
