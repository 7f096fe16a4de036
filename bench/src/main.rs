//! hc-bench: the benchmarks behind BENCHMARKS.md, one command each.
//!
//!   hc-bench migration [--sizes 1,64,512] [--runs 3]
//!   hc-bench overhead [--runs 5]
//!   hc-bench parts
//!   hc-bench real [--runs 5] [--reuse]
//!
//! Builds its workloads with the hcc next to it (target/release), runs them
//! under hcontainer, prints Markdown tables and writes SVG plots into bench/.
//! `overhead` and `parts` measure our own kernels (bench/workloads/*.c);
//! `real` measures Lua, bzip2 and the sqlite3 shell, built by their own build
//! systems from Debian sources fetched at run time (never committed), on
//! inputs of ours (bench/workloads/bench.lua, queries.sql, generated text).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(about = "Benchmarks of hcontainer: migration latency, the cost of migratability")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Migration latency (dump, rewrite, restore) against heap size, both
    /// directions; table on stdout, plot in bench/migration-latency.svg.
    Migration {
        /// Heap sizes in MiB.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1u64, 64, 512])]
        sizes: Vec<u64>,
        /// Runs per size and direction (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// What migratability costs while not migrating: each workload built
    /// with hcc and with plain clang-22 -O2 against the same musl; callgrind
    /// instructions, wall time (interleaved runs), peak RSS, .text size and
    /// wall time under qemu-aarch64. Table on stdout, bars in bench/overhead.svg.
    Overhead {
        /// Interleaved wall-time runs per build (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Where the overhead comes from: each kernel built again with one part
    /// of the instrumentation switched off (HCC_BENCH_ABLATE: loop polls,
    /// entry polls with the resume paths they lead to) and
    /// callgrind instructions of each against plain clang; the remainder is
    /// statepoints, the shadow stack and what they cost the register
    /// allocator. Table on stdout.
    Parts,
    /// The same measurements as `overhead` on real programs, each built by
    /// its own build system from Debian sources (scripts/fetch-source.sh,
    /// into target/sources) with hcc and with scripts/musl-clang, in
    /// target/bench-real: Lua 5.4 running bench/workloads/bench.lua, bzip2 -9
    /// compressing generated text, the sqlite3 shell running
    /// bench/workloads/queries.sql on an in-memory database. Table on stdout,
    /// bars in bench/overhead-real.svg. About 10 minutes, mostly building.
    Real {
        /// Interleaved wall-time runs per build (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Take the executables an earlier run left in target/bench-real
        /// instead of building again (only while hcc is unchanged).
        #[arg(long)]
        reuse: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Migration { sizes, runs } => migration(&sizes, runs),
        Cmd::Overhead { runs } => overhead(runs),
        Cmd::Parts => parts(),
        Cmd::Real { runs, reuse } => real(runs, reuse),
    }
}

/// Where hcc and hcontainer are: next to this binary.
fn tool(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.parent().context("hc-bench has a directory")?.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build the workspace first (cargo build --release)",
            p.display()
        );
    }
    Ok(p)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds bench/workloads/NAME.c with hcc -O2 into `dir`.
fn build(name: &str, dir: &Path) -> Result<PathBuf> {
    build_ablated(name, dir, "")
}

/// Builds with parts of the instrumentation off (`HCC_BENCH_ABLATE`).
fn build_ablated(name: &str, dir: &Path, ablate: &str) -> Result<PathBuf> {
    let src = repo().join("bench/workloads").join(format!("{name}.c"));
    let out = if ablate.is_empty() {
        dir.join(name)
    } else {
        dir.join(format!("{name}.no-{}", ablate.replace(',', "+")))
    };
    run(
        Command::new(tool("hcc")?)
            .env("HCC_BENCH_ABLATE", ablate)
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&src),
        format!("hcc {}", src.display()),
    )?;
    Ok(out)
}

/// One migration as hcontainer reports it, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Hop {
    dump: f64,
    rewrite: f64,
    restore: f64,
    start: f64,
    mib: f64,
}

impl Hop {
    /// End to end without the destination's process start (qemu's own).
    fn total(&self) -> f64 {
        self.dump + self.rewrite + self.restore
    }

    /// From "migrated A -> B (1/1): dump X ms, rewrite Y ms, restore Z ms
    /// (+W ms process start), N frames, M MiB".
    fn parse(line: &str) -> Option<Hop> {
        let num = |key: &str| -> Option<f64> {
            let at = line.find(key)? + key.len();
            line[at..].split_whitespace().next()?.parse().ok()
        };
        let mib = line
            .rsplit(", ")
            .next()?
            .strip_suffix(" MiB")?
            .parse()
            .ok()?;
        Some(Hop {
            dump: num("dump ")?,
            rewrite: num("rewrite ")?,
            restore: num("restore ")?,
            start: num("(+")?,
            mib,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn migration(sizes: &[u64], runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let app = build("heap", dir.path())?;
    let hcontainer = tool("hcontainer")?;
    let routes = ["x86_64,aarch64", "aarch64,x86_64"];
    // (route, size) -> median hop
    let mut results: Vec<(&str, u64, Hop)> = Vec::new();
    for &mib in sizes {
        for route in routes {
            let mut hops = Vec::new();
            for _ in 0..runs.max(1) {
                // After the heap is built: about 17 points per 64 KiB block
                // (its 128-trip loop polls once per eight), then the tick
                // loop's half a million (one poll per eight calls). Aimed
                // past 20 per block, so at 512 MiB it still falls inside
                // the tick loop (1600 per MiB had it after the program's end).
                let at = (320 * mib + 10_000).to_string();
                let o = Command::new(&hcontainer)
                    .args(["run", "--migrate", route, "--at-point", &at])
                    .arg(&app)
                    .arg(mib.to_string())
                    .current_dir(dir.path())
                    .output()?;
                let err = String::from_utf8_lossy(&o.stderr);
                let hop = err
                    .lines()
                    .find(|l| l.starts_with("hcontainer: migrated "))
                    .and_then(Hop::parse)
                    .with_context(|| {
                        format!("no migration reported for {mib} MiB {route}:\n{err}")
                    })?;
                if !o.status.success() {
                    bail!("heap {mib} on {route} failed:\n{err}");
                }
                hops.push(hop);
            }
            let med = Hop {
                dump: median(hops.iter().map(|h| h.dump).collect()),
                rewrite: median(hops.iter().map(|h| h.rewrite).collect()),
                restore: median(hops.iter().map(|h| h.restore).collect()),
                start: median(hops.iter().map(|h| h.start).collect()),
                mib: median(hops.iter().map(|h| h.mib).collect()),
            };
            eprintln!("{mib} MiB {route}: {med:?}");
            results.push((route, mib, med));
        }
    }
    println!("| heap | route | memory moved (MiB) | dump (ms) | rewrite (ms) | transfer | restore (ms) | end to end (ms) | + process start (ms) | memory moved per second (GiB/s) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (route, mib, h) in &results {
        println!(
            "| {mib} MiB | {} | {:.1} | {:.2} | {:.2} | (same host) | {:.2} | {:.2} | {:.2} | {:.2} |",
            route.replace(',', " → "),
            h.mib,
            h.dump,
            h.rewrite,
            h.restore,
            h.total(),
            h.start,
            h.mib / 1024.0 / (h.total() / 1000.0)
        );
    }
    plot_migration(&results, &repo().join("bench/migration-latency.svg"))?;
    Ok(())
}

fn plot_migration(results: &[(&str, u64, Hop)], out: &Path) -> Result<()> {
    let root = SVGBackend::new(out, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_mib = results.iter().map(|r| r.1).max().unwrap_or(1) as f64;
    let max_ms = results.iter().map(|r| r.2.total()).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "hcontainer migration latency against heap size",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (0.5f64..max_mib * 2.0).log_scale(),
            (0.05f64..max_ms * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("heap (MiB)")
        .y_desc("milliseconds (process start excluded)")
        .draw()?;
    type Part = fn(&Hop) -> f64;
    let series: [(&str, Part); 4] = [
        ("end to end", Hop::total),
        ("dump", |h| h.dump),
        ("rewrite", |h| h.rewrite),
        ("restore", |h| h.restore),
    ];
    let styles = [&RED, &BLUE, &GREEN, &MAGENTA];
    for (route, dash) in [("x86_64,aarch64", false), ("aarch64,x86_64", true)] {
        for ((name, f), color) in series.iter().zip(styles) {
            let pts: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| r.0 == route)
                .map(|r| (r.1 as f64, f(&r.2).max(0.05)))
                .collect();
            let label = format!("{name}, {}", route.replace(',', " → "));
            let style = if dash {
                color.stroke_width(1)
            } else {
                color.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A CPU kernel: its name (bench/workloads/NAME.c), arguments for timed runs
/// (a fraction of a second natively) and for callgrind and qemu (smaller).
struct Kernel {
    name: &'static str,
    timed: &'static [&'static str],
    small: &'static [&'static str],
}

const KERNELS: &[Kernel] = &[
    Kernel {
        name: "sort",
        timed: &["3000000"],
        small: &["300000"],
    },
    Kernel {
        name: "matmul",
        timed: &["400"],
        small: &["120"],
    },
    Kernel {
        name: "hash",
        timed: &["400000"],
        small: &["50000"],
    },
    Kernel {
        name: "tree",
        timed: &["18"],
        small: &["13"],
    },
    Kernel {
        name: "interp",
        timed: &["20000000"],
        small: &["1000000"],
    },
    Kernel {
        name: "vector",
        timed: &["40000"],
        small: &["2000"],
    },
];

/// Builds a workload with plain clang-22 -O2 against musl for `isa`.
fn build_plain(name: &str, isa: &str, dir: &Path) -> Result<PathBuf> {
    let src = repo().join("bench/workloads").join(format!("{name}.c"));
    let out = dir.join(format!("{name}.plain.{isa}"));
    run(
        Command::new(repo().join("scripts/musl-clang"))
            .env("MUSL_ISA", isa)
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&src),
        format!("musl-clang {}", src.display()),
    )?;
    Ok(out)
}

/// The aarch64 variant of an hcc build, as a plain executable.
fn extract_aarch64(app: &Path) -> Result<PathBuf> {
    let out = app.with_extension("aarch64");
    run(
        Command::new(tool("hcontainer")?)
            .args(["extract", "--isa", "aarch64"])
            .arg(app)
            .arg("-o")
            .arg(&out),
        "extract".to_string(),
    )?;
    Ok(out)
}

/// Instructions callgrind counts for one run.
fn instructions(app: &Path, args: &[&str]) -> Result<u64> {
    let o = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(app)
        .args(args)
        .output()
        .context("valgrind (installed by scripts/setup.sh)")?;
    let err = String::from_utf8_lossy(&o.stderr);
    err.lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no instruction count from callgrind:\n{err}"))
}

/// Runs once; (wall seconds, peak RSS in KiB, stdout).
fn timed_run(cmd: &[&Path], args: &[&str]) -> Result<(f64, u64, Vec<u8>)> {
    use std::os::unix::process::ExitStatusExt;
    let t0 = std::time::Instant::now();
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..])
        .args(args)
        .stdout(std::process::Stdio::piped());
    let child = c.spawn()?;
    let pid = child.id() as i32;
    let mut out = Vec::new();
    if let Some(mut so) = child.stdout {
        use std::io::Read;
        so.read_to_end(&mut out)?;
    }
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 reaps the child spawned above.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t0.elapsed().as_secs_f64();
    if r < 0 || !std::process::ExitStatus::from_raw(status).success() {
        bail!("{} {:?} failed", cmd.last().unwrap().display(), args);
    }
    Ok((wall, ru.ru_maxrss as u64, out))
}

/// Median wall time of A and of B, runs interleaved (A B A B ...), and the
/// spread of the per-pair ratios B/A (min, max); peak RSS of each.
fn interleaved(a: &[&Path], b: &[&Path], args: &[&str], runs: usize) -> Result<Wall> {
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ra, mut rb) = (0, 0);
    let mut outs = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let (wa, ma, oa) = timed_run(a, args)?;
        let (wb, mb, ob) = timed_run(b, args)?;
        ta.push(wa);
        tb.push(wb);
        ratios.push(wb / wa);
        ra = ra.max(ma);
        rb = rb.max(mb);
        outs = (oa, ob);
    }
    if outs.0 != outs.1 {
        bail!("the two builds print different results for {:?}", args);
    }
    ratios.sort_by(f64::total_cmp);
    Ok(Wall {
        a: median(ta),
        b: median(tb),
        spread: (ratios[0], ratios[ratios.len() - 1]),
        rss: (ra, rb),
    })
}

struct Wall {
    a: f64,
    b: f64,
    spread: (f64, f64),
    rss: (u64, u64),
}

impl Wall {
    fn ratio(&self) -> f64 {
        self.b / self.a
    }
}

fn text_size(exe: &Path) -> Result<u64> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(exe)?;
    let f = object::File::parse(&*data).map_err(|e| anyhow::anyhow!("{}: {e}", exe.display()))?;
    Ok(f.sections()
        .filter(|s| s.name().is_ok_and(|n| n.starts_with(".text")))
        .map(|s| s.size())
        .sum())
}

fn overhead(runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for k in KERNELS {
        eprintln!("{}: building", k.name);
        let hcc = build(k.name, dir.path())?;
        let hcc_arm = extract_aarch64(&hcc)?;
        let plain = build_plain(k.name, "x86_64", dir.path())?;
        let plain_arm = build_plain(k.name, "aarch64", dir.path())?;
        let builds = Builds {
            plain: &plain,
            hcc: &hcc,
            plain_arm: &plain_arm,
            hcc_arm: &hcc_arm,
        };
        rows.push(measure(k.name, &builds, k.small, k.timed, runs)?);
    }
    print_overhead(&rows);
    plot_overhead(
        &bars(&rows),
        "hcc instruction overhead against clang-22 -O2 (x86_64, callgrind)",
        &repo().join("bench/overhead.svg"),
    )?;
    Ok(())
}

/// One row of the `overhead` and `real` tables.
/// A workload's four executables.
struct Builds<'a> {
    plain: &'a Path,
    hcc: &'a Path,
    plain_arm: &'a Path,
    hcc_arm: &'a Path,
}

/// One table row: callgrind instructions on `small` (debug information
/// stripped: valgrind 3.19 cannot read clang-22's DWARF 5), wall time on
/// `timed` natively and on `small` under qemu-aarch64, and `.text` sizes.
fn measure(
    name: &'static str,
    b: &Builds,
    small: &[&str],
    timed: &[&str],
    runs: usize,
) -> Result<Row> {
    let qemu = Path::new("/usr/bin/qemu-aarch64");
    eprintln!("{name}: callgrind");
    let ip = instructions(&strip_debug(b.plain)?, small)?;
    let ih = instructions(&strip_debug(b.hcc)?, small)?;
    eprintln!("{name}: wall time");
    let x86 = interleaved(&[b.plain], &[b.hcc], timed, runs)?;
    let arm = interleaved(&[qemu, b.plain_arm], &[qemu, b.hcc_arm], small, runs.min(3))?;
    let text = (
        text_size(b.hcc)? as f64 / text_size(b.plain)? as f64,
        text_size(b.hcc_arm)? as f64 / text_size(b.plain_arm)? as f64,
    );
    Ok(Row {
        name,
        instructions: (ip, ih),
        x86,
        arm,
        text,
    })
}

struct Row {
    name: &'static str,
    /// Callgrind instructions, plain and hcc (x86_64).
    instructions: (u64, u64),
    x86: Wall,
    /// Under qemu-aarch64.
    arm: Wall,
    /// .text of hcc against plain: x86_64, aarch64.
    text: (f64, f64),
}

impl Row {
    fn overhead(&self) -> f64 {
        self.instructions.1 as f64 / self.instructions.0 as f64
    }
}

/// The Markdown table of `overhead` and `real`, with a geometric-mean row.
fn print_overhead(rows: &[Row]) {
    println!("| workload | instructions plain | instructions hcc | overhead | wall x86_64 hcc/plain (spread) | peak RSS hcc/plain | wall aarch64 (qemu) hcc/plain | .text x86_64 | .text aarch64 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut logs = (0.0, 0.0, 0.0);
    for r in rows {
        logs.0 += r.overhead().ln();
        logs.1 += r.x86.ratio().ln();
        logs.2 += r.arm.ratio().ln();
        println!(
            "| {} | {} | {} | {:+.2}% | {:.3} ({:.3}–{:.3}) | {:.2} | {:.3} | {:.2}× | {:.2}× |",
            r.name,
            r.instructions.0,
            r.instructions.1,
            (r.overhead() - 1.0) * 100.0,
            r.x86.ratio(),
            r.x86.spread.0,
            r.x86.spread.1,
            r.x86.rss.1 as f64 / r.x86.rss.0 as f64,
            r.arm.ratio(),
            r.text.0,
            r.text.1
        );
    }
    let n = rows.len() as f64;
    println!(
        "| **geometric mean** | | | **{:+.2}%** | **{:.3}** | | **{:.3}** | | |",
        ((logs.0 / n).exp() - 1.0) * 100.0,
        (logs.1 / n).exp(),
        (logs.2 / n).exp()
    );
}

/// Extra instructions in percent, per workload.
fn bars(rows: &[Row]) -> Vec<(&'static str, f64)> {
    rows.iter()
        .map(|r| (r.name, (r.overhead() - 1.0) * 100.0))
        .collect()
}

fn plot_overhead(bars: &[(&str, f64)], caption: &str, out: &Path) -> Result<()> {
    let root = SVGBackend::new(out, (800, 450)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars.iter().map(|b| b.1).fold(6.0, f64::max) * 1.2;
    let bottom = bars.iter().map(|b| b.1).fold(0.0, f64::min) * 1.2;
    let n = bars.len() as f64;
    let names: Vec<String> = bars.iter().map(|b| b.0.to_string()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, bottom.min(-1.0)..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc("extra instructions (%)")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        let color = if *v > 5.0 { RED } else { BLUE };
        Rectangle::new(
            [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
            color.filled(),
        )
    }))?;
    // The goals: 2% on average (dashed), 5% for any workload.
    for (goal, color) in [(2.0, GREEN), (5.0, RED)] {
        chart.draw_series(LineSeries::new(
            vec![(0.0, goal), (n, goal)],
            color.stroke_width(1),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// The parts `hc-bench parts` switches off, one build each, then all together.
const PARTS: &[(&str, &str)] = &[
    ("loop-polls", "loop polls"),
    ("entry-polls", "entry polls + resume paths"),
    ("loop-polls,entry-polls", "both"),
];

fn parts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    print!("| workload | overhead (all parts) |");
    for (_, title) in PARTS {
        print!(" without {title} |");
    }
    println!(" resume paths' share of .text |");
    println!("|---|---|{}---|", "---|".repeat(PARTS.len()));
    for k in KERNELS {
        eprintln!("{}: building {} variants", k.name, PARTS.len() + 2);
        let plain = build_plain(k.name, "x86_64", dir.path())?;
        let full = build(k.name, dir.path())?;
        let base = instructions(&plain, k.small)? as f64;
        let pct = |n: u64| (n as f64 / base - 1.0) * 100.0;
        print!(
            "| {} | {:+.2}% |",
            k.name,
            pct(instructions(&full, k.small)?)
        );
        let mut no_resume = None;
        for (ablate, _) in PARTS {
            let exe = build_ablated(k.name, dir.path(), ablate)?;
            print!(" {:+.2}% |", pct(instructions(&exe, k.small)?));
            if *ablate == "entry-polls" {
                no_resume = Some(text_size(&exe)?);
            }
        }
        let text = text_size(&full)? as f64;
        let resume = text - no_resume.unwrap_or(0) as f64;
        println!(" {:.0}% |", resume / text * 100.0);
    }
    Ok(())
}

/// A real program of `hc-bench real`: built from its Debian source package
/// by its own build system, run on an input of ours.
struct Program {
    /// Row name.
    name: &'static str,
    /// Debian source package (scripts/fetch-source.sh).
    pkg: &'static str,
    /// The executable, relative to the build tree.
    exe: &'static str,
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "Lua 5.4",
        pkg: "lua5.4",
        exe: "src/lua",
    },
    Program {
        name: "bzip2",
        pkg: "bzip2",
        exe: "bzip2",
    },
    Program {
        name: "sqlite3 shell",
        pkg: "sqlite3",
        exe: "sqlite3",
    },
];

/// Builds `p` in a fresh copy of its sources at `work/PKG-TAG` with CC `cc`
/// (`hcc`, or scripts/musl-clang for `isa`), the way scripts/bench-compile.sh
/// does: Lua `make -j2 linux MYCFLAGS=-Dluai_makeseed=sizeof`, bzip2 `make -j2 bzip2`, sqlite3 `./configure
/// --disable-shared --disable-tcl --disable-readline && make -j2 sqlite3`.
/// With `reuse`, an executable left by an earlier run is taken as it is.
fn build_real(
    p: &Program,
    tag: &str,
    cc: &str,
    isa: &str,
    work: &Path,
    reuse: bool,
) -> Result<PathBuf> {
    let dir = work.join(format!("{}-{tag}", p.pkg));
    let exe = dir.join(p.exe);
    if reuse && exe.exists() {
        return Ok(exe);
    }
    let sources = repo().join("target/sources");
    run(
        Command::new(repo().join("scripts/fetch-source.sh"))
            .arg(p.pkg)
            .arg(&sources),
        format!("fetch-source {}", p.pkg),
    )?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    run(
        Command::new("cp")
            .arg("-a")
            .arg(sources.join(p.pkg))
            .arg(&dir),
        format!("copying {}", p.pkg),
    )?;
    let cc_arg = format!("CC={cc}");
    let mut steps: Vec<Vec<&str>> = Vec::new();
    match p.pkg {
        // A fixed string-hash seed (Lua seeds it from the time and
        // addresses): the same instruction count on every run, so a change
        // of a few million shows (it moved by ±1.5% between runs).
        "lua5.4" => steps.push(vec![
            "make",
            "-j2",
            "linux",
            &cc_arg,
            "MYCFLAGS=-Dluai_makeseed=sizeof",
        ]),
        "bzip2" => steps.push(vec!["make", "-j2", &cc_arg, "bzip2"]),
        _ => {
            let mut configure = vec!["./configure", &cc_arg];
            // The aarch64 baseline cannot run configure's test programs here.
            if isa == "aarch64" && cc != "hcc" {
                configure.push("--host=aarch64-linux-musl");
            }
            configure.extend(["--disable-shared", "--disable-tcl", "--disable-readline"]);
            steps.push(configure);
            steps.push(vec!["make", "-j2", "sqlite3"]);
        }
    }
    // hcc (and hcontainer, which it may call) first on PATH, as installed.
    let bin = tool("hcc")?
        .parent()
        .context("hcc has a directory")?
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log_path = work.join(format!("{}-{tag}.log", p.pkg));
    let log = std::fs::File::create(&log_path)?;
    for step in steps {
        let status = Command::new(step[0])
            .args(&step[1..])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("MUSL_ISA", isa)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()?;
        if !status.success() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            bail!(
                "`{}` in {} failed ({status}); last lines of {}:\n{}",
                step.join(" "),
                dir.display(),
                log_path.display(),
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
    if !exe.exists() {
        bail!("{} was not built", exe.display());
    }
    Ok(exe)
}

/// Runs `cmd`; a failure names `what` and carries the tool's stderr.
fn run(cmd: &mut Command, what: String) -> Result<()> {
    let o = cmd.output()?;
    if !o.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(())
}

/// A copy without debug information, for callgrind (valgrind 3.19 cannot
/// read clang-22's DWARF 5).
fn strip_debug(exe: &Path) -> Result<PathBuf> {
    let out = exe.with_extension("nodebug");
    run(
        Command::new("llvm-objcopy-22")
            .arg("--strip-debug")
            .arg(exe)
            .arg(&out),
        format!("llvm-objcopy-22 {}", exe.display()),
    )?;
    Ok(out)
}

/// Deterministic text of `len` bytes for bzip2: words from a small
/// vocabulary, numbers and a few random letters, from a seeded xorshift
/// (moderately compressible: about 4:1 with bzip2 -9).
fn text_data(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "that",
        "for",
        "it",
        "as",
        "with",
        "was",
        "on",
        "be",
        "by",
        "this",
        "are",
        "from",
        "or",
        "have",
        "an",
        "they",
        "which",
        "one",
        "you",
        "were",
        "all",
        "we",
        "when",
        "there",
        "can",
        "stack",
        "frame",
        "heap",
        "migrate",
        "register",
        "pointer",
        "compiler",
        "runtime",
        "aarch64",
        "x86_64",
        "statepoint",
        "snapshot",
        "process",
        "memory",
        "thread",
        "signal",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 16 {
            0 => out.extend_from_slice(((x >> 20) % 100_000).to_string().as_bytes()),
            1 => out.extend((0..(x >> 8) % 6 + 2).map(|i| b'a' + ((x >> (16 + 5 * i)) % 26) as u8)),
            _ => out.extend_from_slice(WORDS[((x >> 24) % WORDS.len() as u64) as usize].as_bytes()),
        }
        out.push(match (x >> 40) % 12 {
            0 => b'\n',
            1 => b',',
            _ => b' ',
        });
    }
    out.truncate(len);
    out
}

/// Arguments of one program's runs: timed (a fraction of a second natively)
/// and small (callgrind and qemu). bzip2's inputs are written into `dir`.
fn real_inputs(p: &Program, dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let workloads = repo().join("bench/workloads");
    let s = |p: &Path| p.display().to_string();
    Ok(match p.pkg {
        "lua5.4" => {
            let script = s(&workloads.join("bench.lua"));
            (vec![script.clone(), "8".into()], vec![script, "2".into()])
        }
        "bzip2" => {
            let big = dir.join("text-4m");
            let small = dir.join("text-1m");
            std::fs::write(&big, text_data(4 << 20, 0x9e37_79b9_7f4a_7c15))?;
            std::fs::write(&small, text_data(1 << 20, 0x2545_f491_4f6c_dd1d))?;
            let args = |f: &Path| vec!["-c".into(), "-9".into(), s(f)];
            (args(&big), args(&small))
        }
        _ => {
            // An in-memory database: fresh each run, no disk in the timings.
            let read = format!(".read {}", s(&workloads.join("queries.sql")));
            let args = |n: u32| {
                vec![
                    "-cmd".into(),
                    format!(".parameter set @n {n}"),
                    ":memory:".into(),
                    read.clone(),
                ]
            };
            (args(20_000), args(5_000))
        }
    })
}

fn real(runs: usize, reuse: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let work = repo().join("target/bench-real");
    std::fs::create_dir_all(&work)?;
    let inputs = tempfile::tempdir()?;
    let plain_cc = repo().join("scripts/musl-clang").display().to_string();
    let mut rows = Vec::new();
    for p in PROGRAMS {
        eprintln!("{}: building with hcc, plain x86_64, plain aarch64", p.name);
        let hcc = build_real(p, "hcc", "hcc", "x86_64", &work, reuse)?;
        let hcc_arm = extract_aarch64(&hcc)?;
        let plain = build_real(p, "x86_64", &plain_cc, "x86_64", &work, reuse)?;
        let plain_arm = build_real(p, "aarch64", &plain_cc, "aarch64", &work, reuse)?;
        let (timed, small) = real_inputs(p, inputs.path())?;
        let timed: Vec<&str> = timed.iter().map(String::as_str).collect();
        let small: Vec<&str> = small.iter().map(String::as_str).collect();
        let builds = Builds {
            plain: &plain,
            hcc: &hcc,
            plain_arm: &plain_arm,
            hcc_arm: &hcc_arm,
        };
        rows.push(measure(p.name, &builds, &small, &timed, runs)?);
    }
    print_overhead(&rows);
    plot_overhead(
        &bars(&rows),
        "hcc instruction overhead on real programs (x86_64, callgrind)",
        &repo().join("bench/overhead-real.svg"),
    )?;
    eprintln!("hc-bench real: {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
