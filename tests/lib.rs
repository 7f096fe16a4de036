//! Shared helpers for the end-to-end tests: the toolchain's binaries (built
//! fresh, once per test process), example programs compiled with hcc, and
//! runs natively, on aarch64 and across migrations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Directory with hcc, hld and hcontainer of the profile the tests run in.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let release = !cfg!(debug_assertions);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        // Build the binaries this test run checks (a no-op when up to date).
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root).args([
            "build",
            "--quiet",
            "--bins",
            "-p",
            "hcc",
            "-p",
            "hld",
            "-p",
            "hcontainer",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the toolchain failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join(if release { "release" } else { "debug" })
    })
}

pub fn tool(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The examples directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Where built examples go: one directory per test process.
pub fn build_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("hc-tests-")
            .tempdir()
            .expect("tempdir")
    })
    .path()
}

/// Builds `examples/<name>.c` with hcc (once per test process).
pub fn example(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = build_dir().join(name);
    if !out.exists() {
        compile(&examples().join(format!("{name}.c")), &out);
    }
    out
}

/// Writes `source` to `dir/name.c` and compiles it (`compile`) to
/// `dir/name`, which it returns.
pub fn compile_source(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let app = dir.join(name);
    compile(&src, &app);
    app
}

/// `hcc -O2 -Wall -o out src -lm`; fails the test with hcc's errors.
pub fn compile(src: &Path, out: &Path) {
    let o = Command::new(tool("hcc"))
        .args(["-O2", "-Wall", "-o"])
        .arg(out)
        .arg(src)
        .arg("-lm")
        .output()
        .expect("hcc runs");
    assert!(
        o.status.success(),
        "hcc {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// stdout as text (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Lines of stderr that report a migration.
    pub fn migrations(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("hcontainer: migrated "))
            .collect()
    }
}

/// Runs a program natively (the primary variant).
pub fn native(app: &Path, args: &[&str], cwd: &Path) -> Run {
    Command::new(app)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("program runs")
        .into()
}

/// Runs `hcontainer <args...>`.
pub fn hcontainer(args: &[&str], cwd: &Path) -> Run {
    Command::new(tool("hcontainer"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("hcontainer runs")
        .into()
}

/// Runs `app` under `hcontainer run --migrate ROUTE --at-point AT`.
pub fn run_migrating(app: &Path, route: &str, at: u64, cwd: &Path) -> Run {
    let at = at.to_string();
    let app = app.to_str().expect("UTF-8 path");
    hcontainer(&["run", "--migrate", route, "--at-point", &at, app], cwd)
}

/// Migrates `app` once along `route` at migration point `at` with
/// `run --keep`: the directory the dump and snapshot were kept in.
pub fn run_keeping(app: &Path, route: &str, at: u64, cwd: &Path) -> PathBuf {
    let keep = cwd.join("keep");
    let at = at.to_string();
    let r = hcontainer(
        &[
            "run",
            "--keep",
            keep.to_str().unwrap(),
            "--migrate",
            route,
            "--at-point",
            &at,
            app.to_str().unwrap(),
        ],
        cwd,
    );
    assert_eq!(r.migrations().len(), 1, "{}", r.stderr);
    keep
}

/// `scripts/musl-clang`: plain clang-22 against the musl hcc uses.
pub fn musl_clang() -> PathBuf {
    examples().join("../scripts/musl-clang")
}

/// Builds `src` with plain `clang-22 -O2 -static` against the same musl
/// as hcc (`scripts/musl-clang`, x86_64) into `out`: the baseline a
/// migratable build must compute alike.
pub fn plain_build(src: &Path, out: &Path) {
    let o = Command::new(musl_clang())
        .env("MUSL_ISA", "x86_64")
        .args(["-O2", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A route that starts on `first` and alternates `hops` times.
pub fn ping_pong(first: &str, hops: usize) -> String {
    let other = if first == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    (0..=hops)
        .map(|i| if i % 2 == 0 { first } else { other })
        .collect::<Vec<_>>()
        .join(",")
}

/// Asserts two runs agree byte for byte on what a user sees.
pub fn assert_same(expected: &Run, got: &Run, what: &str) {
    assert_eq!(
        expected.code, got.code,
        "{what}: exit code differs\n--- stderr ---\n{}",
        got.stderr
    );
    if expected.stdout != got.stdout {
        let e = String::from_utf8_lossy(&expected.stdout);
        let g = String::from_utf8_lossy(&got.stdout);
        let line = e
            .lines()
            .zip(g.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(e.lines().count().min(g.lines().count()));
        panic!(
            "{what}: stdout differs from the uninterrupted run at line {} ({} vs {} bytes)\nexpected: {:?}\n     got: {:?}\n--- stderr ---\n{}",
            line + 1,
            expected.stdout.len(),
            got.stdout.len(),
            e.lines().nth(line),
            g.lines().nth(line),
            got.stderr
        );
    }
}

/// Asserts the migratable share of call sites reported by `hcontainer sites
/// --json`, and that every lost site is listed with a reason.
pub fn sites_at_least(app: &Path, percent: f64) {
    let r = hcontainer(
        &["sites", "--json", app.to_str().unwrap()],
        app.parent().unwrap(),
    );
    assert_ok(&r, "hcontainer sites --json");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("sites --json is JSON");
    let total = v["total"].as_u64().expect("total");
    let migratable = v["migratable"].as_u64().expect("migratable");
    let listed: u64 = v["not_migratable"]
        .as_array()
        .expect("not_migratable")
        .iter()
        .map(|g| g["sites"].as_u64().expect("sites per reason"))
        .sum();
    assert_eq!(
        listed,
        total - migratable,
        "every non-migratable site is listed"
    );
    let share = migratable as f64 * 100.0 / total as f64;
    eprintln!(
        "{}: {migratable}/{total} sites migratable ({share:.2}%)",
        app.display()
    );
    assert!(
        share >= percent,
        "{}: only {share:.2}% of {total} sites are migratable (want ≥ {percent}%):\n{}",
        app.display(),
        String::from_utf8_lossy(
            &hcontainer(&["sites", app.to_str().unwrap()], app.parent().unwrap()).stdout
        )
    );
}

/// The run exited with status 0.
pub fn assert_ok(r: &Run, what: &str) {
    assert_eq!(r.code, Some(0), "{what} failed:\n{}", r.stderr);
}

/// `n` migration points in `lo..hi`, drawn from a fixed seed so a failure
/// reproduces (`HC_SEED=<number>` draws others); returns the seed too.
pub fn seeded_points(n: usize, lo: u64, hi: u64) -> (u64, Vec<u64>) {
    let seed = std::env::var("HC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026u64);
    // xorshift64*: enough for spreading points.
    let mut x = seed | 1;
    let points = (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            lo + x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (hi - lo)
        })
        .collect();
    (seed, points)
}
