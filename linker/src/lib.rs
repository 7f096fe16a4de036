//! hld: links every ISA variant of a program with ld.lld-22 against Debian's
//! musl, gives every symbol the same address in all of them, and writes one
//! multi-ISA ELF (DESIGN.md 3.5).
//!
//! Pass 1 links each variant normally to learn which input sections it
//! needs and how large they are; the plan gives each one address; pass 2
//! links with generated linker scripts; the result is checked against the
//! plan, stamped with a build id, and packaged with its metadata.

pub mod inputs;
pub mod layout;
pub mod mapfile;
pub mod package;

use hc_metadata::Isa;
use inputs::Item;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub const LLD: &str = "ld.lld-22";

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{file}: not built by hcc: {why}; every object of a migratable program must be compiled with CC=hcc")]
    NotHcc { file: String, why: String },
    #[error("{file}: damaged hcc object: {why}")]
    Corrupt { file: String, why: String },
    #[error("cannot find -l{name}: hld links static archives built with CC=hcc (searched: {})", .dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))]
    LibraryNotFound { name: String, dirs: Vec<PathBuf> },
    #[error("the {isa} link failed:\n{stderr}")]
    Lld { isa: Isa, stderr: String },
    #[error("{0}")]
    Tool(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Layout(#[from] layout::LayoutError),
    #[error("the program has no main function")]
    NoMain,
    #[error("internal error: {0} (please report this)")]
    Internal(String),
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub output: PathBuf,
    pub items: Vec<Item>,
    pub lib_dirs: Vec<PathBuf>,
    /// Forwarded to every variant's ld.lld.
    pub ld_args: Vec<String>,
    pub nostartfiles: bool,
    pub nodefaultlibs: bool,
    pub verbose: bool,
    /// `-s`/`-S` (`--strip-all`, `--strip-debug`): every variant without
    /// its debug information. Symbols stay: hld and hcontainer read them.
    pub strip_debug: bool,
    /// Keep the per-variant scripts, maps and executables in this directory.
    pub keep: Option<PathBuf>,
}

/// Links one variant. `script` is None for the first pass.
fn lld(
    isa: Isa,
    opts: &Options,
    prepared: &inputs::Prepared,
    dir: &Path,
    pass: u32,
    script: Option<&Path>,
) -> Result<(PathBuf, mapfile::LinkMap), LinkError> {
    let out = dir.join(format!("{}.pass{pass}", isa.name()));
    let map = dir.join(format!("{}.pass{pass}.map", isa.name()));
    let libdir = PathBuf::from(isa.musl_lib_dir());
    let mut cmd = Command::new(LLD);
    // -O0 keeps each input's string sections whole, so each can be placed.
    cmd.args([
        "-O0",
        "-static",
        "-nostdlib",
        "-z",
        "norelro",
        "-z",
        "noexecstack",
        "--build-id=none",
    ]);
    cmd.arg("-o")
        .arg(&out)
        .arg(format!("-Map={}", map.display()));
    // New threads get their own shadow stacks (runtime/native/hcrt.c);
    // POSIX timers are counted (no dump while one lives).
    // The main thread's errno is migrated data. A migration waiting for a
    // record lock is tried again once one is released.
    for sym in [
        "pthread_create",
        "timer_create",
        "timer_delete",
        "fcntl",
        "close",
        // CPU clocks go on from the processes the program ran in before.
        "clock_gettime",
        "__clock_gettime",
        "getrusage",
        "times",
        "__errno_location",
        "___errno_location",
        // A seccomp filter going in ends migration requests first.
        "prctl",
        "syscall",
        // Sleeps a migration request interrupts go on to their end
        // (musl's own); the program's own migrate mid-sleep.
        "__clock_nanosleep",
        "clock_nanosleep",
        "nanosleep",
        "sleep",
        "usleep",
        // Blocking calls migrate while they wait (runtime "Blocking calls").
        "read",
        "readv",
        "write",
        "writev",
        "recv",
        "recvfrom",
        "recvmsg",
        "send",
        "sendto",
        "sendmsg",
        "accept",
        "accept4",
        "poll",
        "select",
        "pause",
        // stdio's reads wait for input first, while they can migrate.
        "fgets",
        "fread",
    ] {
        cmd.arg(format!("--wrap={sym}"));
    }
    for group in inputs::ON_DEMAND_WRAPS {
        if group.iter().any(|f| prepared.referenced.contains(*f)) {
            for sym in *group {
                cmd.arg(format!("--wrap={sym}"));
            }
        }
    }
    for (entry, function) in inputs::ON_DEMAND_REQUIRES {
        if prepared.referenced.contains(*entry) {
            cmd.arg(format!("--undefined={function}"));
        }
    }
    // Memory restore mapped from a file stays anonymous to the program.
    for sym in ["__mremap", "mremap", "__madvise", "madvise"] {
        cmd.arg(format!("--wrap={sym}"));
    }
    match script {
        Some(s) => {
            cmd.arg("-T").arg(s);
        }
        None => {
            for sym in [
                "__hc_image_start",
                "__hc_image_end",
                "__hc_data_start",
                "__hc_data_end",
                "__hc_local_start",
                "__hc_local_end",
            ] {
                cmd.arg(format!("--defsym={sym}=0"));
            }
        }
    }
    if !opts.nostartfiles {
        cmd.arg(libdir.join("crt1.o")).arg(libdir.join("crti.o"));
    }
    // The runtime first: its constructor must run before any other.
    cmd.args(&prepared.runtime[&isa]);
    cmd.args(&prepared.files[&isa]);
    if !opts.nodefaultlibs {
        cmd.arg("--start-group")
            .arg(&prepared.libc[&isa])
            .arg(isa.info().libgcc)
            .arg("--end-group");
    }
    if !opts.nostartfiles {
        cmd.arg(libdir.join("crtn.o"));
    }
    cmd.args(&opts.ld_args);
    if opts.verbose {
        eprintln!(" {cmd:?}");
    }
    let output = cmd
        .output()
        .map_err(|e| LinkError::Tool(format!("cannot run {LLD}: {e} (run scripts/setup.sh)")))?;
    if !output.status.success() {
        return Err(LinkError::Lld {
            isa,
            stderr: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        });
    }
    let text = std::fs::read_to_string(&map)
        .map_err(|e| LinkError::Io(format!("{}: {e}", map.display())))?;
    let parsed = mapfile::parse(&text).map_err(LinkError::Internal)?;
    Ok((out, parsed))
}

/// Runs `f` for every ISA on its own thread; the primary's error wins, since
/// every variant usually fails the same way.
fn per_isa<T: Send>(
    f: impl Fn(Isa) -> Result<T, LinkError> + Sync,
) -> Result<BTreeMap<Isa, T>, LinkError> {
    let results: Vec<(Isa, Result<T, LinkError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = Isa::ALL
            .iter()
            .map(|&isa| {
                (isa, {
                    let f = &f;
                    s.spawn(move || f(isa))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|(isa, h)| {
                (
                    isa,
                    h.join().unwrap_or_else(|_| {
                        Err(LinkError::Internal("link thread panicked".into()))
                    }),
                )
            })
            .collect()
    });
    let mut out = BTreeMap::new();
    for (isa, r) in results {
        out.insert(isa, r?);
    }
    Ok(out)
}

/// What a link produced, for -v and the tests.
#[derive(Debug)]
pub struct Report {
    pub functions: usize,
    pub instrumented: usize,
    pub sites: usize,
    pub millis: u128,
}

pub fn link(opts: &Options) -> Result<Report, LinkError> {
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("hld-")
        .tempdir()
        .map_err(|e| LinkError::Io(format!("cannot create a temporary directory: {e}")))?;
    let dir = tmp.path();
    let result = link_in(opts, dir);
    if let Some(keep) = &opts.keep {
        copy_tree(dir, keep);
    }
    let (container, meta) = result?;
    write_executable(&opts.output, &container)?;
    Ok(Report {
        functions: meta.functions.len(),
        instrumented: meta.functions.iter().filter(|f| f.instrumented).count(),
        sites: meta.functions.iter().map(|f| f.sites.len()).sum(),
        millis: t0.elapsed().as_millis(),
    })
}

/// HCC_TIME=1 prints how long each step of a link took (as hcc does for
/// its compile steps).
struct Steps {
    on: bool,
    last: std::cell::Cell<Instant>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            on: std::env::var_os("HCC_TIME").is_some(),
            last: std::cell::Cell::new(Instant::now()),
        }
    }
    fn mark(&self, step: &str) {
        if self.on {
            let now = Instant::now();
            eprintln!(
                "hld: {step}: {:.0} ms",
                (now - self.last.get()).as_secs_f64() * 1000.0
            );
            self.last.set(now);
        }
    }
}

fn link_in(
    opts: &Options,
    dir: &Path,
) -> Result<(Vec<u8>, hc_metadata::meta::BinaryMeta), LinkError> {
    let steps = Steps::new();
    let prepared = inputs::prepare(&opts.items, &opts.lib_dirs, dir)?;
    steps.mark("inputs");
    let pass1 = per_isa(|isa| lld(isa, opts, &prepared, dir, 1, None))?;
    steps.mark("lld pass 1");
    let maps: BTreeMap<Isa, mapfile::LinkMap> =
        pass1.into_iter().map(|(i, (_, m))| (i, m)).collect();
    let plan = layout::plan(&maps)?;
    steps.mark("layout");
    let pass2 = per_isa(|isa| {
        let script = dir.join(format!("{}.ld", isa.name()));
        std::fs::write(&script, layout::script(&plan, isa))
            .map_err(|e| LinkError::Io(e.to_string()))?;
        let (exe, map) = lld(isa, opts, &prepared, dir, 2, Some(&script))?;
        layout::check(&plan, isa, &map).map_err(LinkError::Internal)?;
        std::fs::read(&exe).map_err(|e| LinkError::Io(e.to_string()))
    })?;
    steps.mark("lld pass 2");
    let mut exes = pass2;
    let build_id = package::patch_build_id(&mut exes)?;
    let meta = package::build_meta(&plan, &prepared.sites, &exes, build_id)?;
    steps.mark("metadata");
    package::drop_stack_maps(&mut exes)?;
    if opts.strip_debug {
        package::drop_debug_info(&mut exes)?;
    }
    let container = package::container(&exes, &meta)?;
    steps.mark("container (packing)");
    Ok((container, meta))
}

fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), target);
        }
    }
}

fn write_executable(path: &Path, data: &[u8]) -> Result<(), LinkError> {
    use std::os::unix::fs::PermissionsExt;
    // Replace, never modify in place: the old file may be running.
    let tmp = path.with_extension("hld-tmp");
    std::fs::write(&tmp, data)
        .map_err(|e| LinkError::Io(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| LinkError::Io(e.to_string()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| LinkError::Io(format!("cannot write {}: {e}", path.display())))
}
