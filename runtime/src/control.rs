//! Requests to a running `hcontainer run` from other hcontainer commands
//! (`migrate PID`, `checkpoint PID`), and checkpoint directories.
//!
//! Every `hcontainer run` listens on a Unix socket named after its own PID,
//! with a link named after the program's current PID (which changes with
//! each migration), in `$TMPDIR/hcontainer-<uid>/`. A request is one line;
//! the answer is progress lines, then `OK <summary>` or `ERR <why>`:
//!
//! ```text
//!   MIGRATE <isa>
//!   CHECKPOINT <leave|stop> <dir>
//! ```

use hc_metadata::Isa;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What another hcontainer asks of a running program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Migrate(Isa),
    Checkpoint { dir: PathBuf, leave_running: bool },
}

impl Request {
    fn encode(&self) -> String {
        match self {
            Request::Migrate(isa) => format!("MIGRATE {isa}\n"),
            Request::Checkpoint { dir, leave_running } => format!(
                "CHECKPOINT {} {}\n",
                if *leave_running { "leave" } else { "stop" },
                dir.display()
            ),
        }
    }

    fn decode(line: &str) -> Result<Request, String> {
        let line = line.trim_end();
        if let Some(isa) = line.strip_prefix("MIGRATE ") {
            return isa.parse().map(Request::Migrate);
        }
        if let Some(rest) = line.strip_prefix("CHECKPOINT ") {
            let (mode, dir) = rest
                .split_once(' ')
                .ok_or("CHECKPOINT needs a mode and a directory")?;
            let leave_running = match mode {
                "leave" => true,
                "stop" => false,
                _ => return Err(format!("unknown checkpoint mode {mode:?}")),
            };
            return Ok(Request::Checkpoint {
                dir: PathBuf::from(dir),
                leave_running,
            });
        }
        Err(format!("unknown request {line:?}"))
    }
}

fn socket_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("hcontainer-{uid}"))
}

fn socket_path(pid: u32) -> PathBuf {
    socket_dir().join(format!("{pid}.sock"))
}

/// The listening end in `hcontainer run`.
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
    link: Option<PathBuf>,
    /// Names that stay while this runs (an adopted program's original PID).
    aliases: Vec<PathBuf>,
}

impl Control {
    pub fn listen() -> std::io::Result<Control> {
        let dir = socket_dir();
        std::fs::create_dir_all(&dir)?;
        let path = socket_path(std::process::id());
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(Control {
            listener,
            path,
            link: None,
            aliases: Vec::new(),
        })
    }

    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.listener.as_raw_fd()
    }

    /// Names the socket after the program's current PID too.
    pub fn follow(&mut self, program_pid: u32) {
        if let Some(old) = self.link.take().filter(|l| !self.aliases.contains(l)) {
            let _ = std::fs::remove_file(old);
        }
        let link = socket_path(program_pid);
        if self.aliases.contains(&link) {
            // Already there, and never briefly missing for a request.
            return;
        }
        let _ = std::fs::remove_file(&link);
        if std::os::unix::fs::symlink(&self.path, &link).is_ok() {
            self.link = Some(link);
        }
    }

    /// Names the socket after `pid` for as long as it runs.
    pub fn alias(&mut self, pid: u32) {
        let link = socket_path(pid);
        let _ = std::fs::remove_file(&link);
        if std::os::unix::fs::symlink(&self.path, &link).is_ok() {
            self.aliases.push(link);
        }
    }

    /// A waiting request, if any: the connection (to answer on) and what it asks.
    pub fn accept(&self) -> Option<(UnixStream, Result<Request, String>)> {
        let (stream, _) = self.listener.accept().ok()?;
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let req = match BufReader::new(&stream).read_line(&mut line) {
            Ok(n) if n > 0 => Request::decode(&line),
            _ => Err("no request".to_string()),
        };
        Some((stream, req))
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        for l in self.link.iter().chain(&self.aliases) {
            // (a link may be named twice: removing it again does nothing)
            let _ = std::fs::remove_file(l);
        }
    }
}

/// Sends one line to a requester (which may have gone away).
pub fn answer(stream: &mut UnixStream, line: &str) {
    let _ = stream.write_all(format!("{line}\n").as_bytes());
}

/// Makes sure something supervises `pid`: an `hcontainer run`, or else an
/// `hcontainer adopt` started here in the background for a program that was
/// started plainly. Returns a note for the user when it adopted.
pub fn ensure_supervised(pid: u32) -> anyhow::Result<Option<String>> {
    if UnixStream::connect(socket_path(pid)).is_ok() {
        return Ok(None);
    }
    if !Path::new(&format!("/proc/{pid}")).exists() {
        anyhow::bail!("there is no process {pid}");
    }
    let dir = socket_dir();
    std::fs::create_dir_all(&dir)?;
    let log = dir.join(format!("adopt-{pid}.log"));
    let log_file = std::fs::File::create(&log)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", log.display()))?;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("adopt")
        .arg(pid.to_string())
        .arg("--notify")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log_file);
    // Its own session: the supervisor outlives this command and the
    // terminal's signals are the program's, not its.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        })
    };
    let mut child = cmd.spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let line = line.trim_end();
    if line == "READY" {
        // Reaped by init once we exit; it runs on without us.
        return Ok(Some(format!(
            "process {pid} was started without hcontainer: now supervised by hcontainer adopt (process {}, log {})",
            child.id(),
            log.display()
        )));
    }
    let _ = child.wait();
    match line.strip_prefix("ERR ") {
        Some(why) => anyhow::bail!("{why}"),
        None => anyhow::bail!(
            "hcontainer adopt for process {pid} ended without answering (see {})",
            log.display()
        ),
    }
}

/// `hcontainer migrate|checkpoint PID`: sends the request to the
/// `hcontainer run` that runs PID and prints its progress; Ok(summary) or
/// Err(why).
pub fn request(pid: u32, req: &Request) -> anyhow::Result<String> {
    let path = socket_path(pid);
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(_) if Path::new(&format!("/proc/{pid}")).exists() => anyhow::bail!(
            "process {pid} is not supervised by hcontainer (`hcontainer adopt {pid}` makes it so)"
        ),
        Err(_) => anyhow::bail!("there is no process {pid}"),
    };
    stream.write_all(req.encode().as_bytes())?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if let Some(ok) = line.strip_prefix("OK ") {
            return Ok(ok.to_string());
        }
        if let Some(err) = line.strip_prefix("ERR ") {
            anyhow::bail!("{err}");
        }
        eprintln!("hcontainer: {line}");
    }
    anyhow::bail!(
        "hcontainer run for process {pid} ended without answering (the program may have exited)"
    )
}

/// The file in a checkpoint directory that describes it.
pub const CHECKPOINT_MANIFEST: &str = "checkpoint.json";
/// The snapshot in a checkpoint directory.
pub const CHECKPOINT_SNAPSHOT: &str = "snapshot.hcs";
/// Version of the checkpoint directory layout (docs/FORMATS.md §8).
pub const CHECKPOINT_VERSION: u32 = 1;

/// `checkpoint.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The program, as an absolute path.
    pub app: PathBuf,
    /// Its build id (hex): a checkpoint restores only into the same build.
    pub build_id: String,
    /// The ISA it was taken on.
    pub isa: String,
    /// The program's arguments (restored from the snapshot; kept for people).
    pub args: Vec<String>,
    /// Frames and memory in the snapshot.
    pub frames: usize,
    pub memory_bytes: usize,
}

impl Manifest {
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(CHECKPOINT_MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a checkpoint ({}: {e})",
                dir.display(),
                path.display()
            )
        })?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: damaged checkpoint manifest: {e}", path.display()))?;
        if m.format != "hcontainer-checkpoint" {
            anyhow::bail!("{}: not an hcontainer checkpoint manifest", path.display());
        }
        if m.version != CHECKPOINT_VERSION {
            anyhow::bail!(
                "{}: checkpoint format version {} (this hcontainer reads version {CHECKPOINT_VERSION})",
                path.display(),
                m.version
            );
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Migrate(Isa::Aarch64),
            Request::Checkpoint {
                dir: PathBuf::from("/tmp/a dir/with spaces"),
                leave_running: true,
            },
        ] {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        assert!(Request::decode("FROB 1\n").is_err());
    }

    proptest::proptest! {
        // Whatever arrives on the socket or sits in a checkpoint directory,
        // parsing answers with an error, never a panic.
        #[test]
        fn any_request_line_parses_or_is_refused(line in ".{0,200}") {
            let _ = Request::decode(&line);
        }

        #[test]
        fn any_manifest_reads_or_is_refused(text in ".{0,400}") {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(CHECKPOINT_MANIFEST), &text).unwrap();
            let _ = Manifest::read(dir.path());
        }
    }
}
