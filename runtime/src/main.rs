//! `hcontainer`: inspect, verify, run and migrate programs built by hcc.

use clap::{Parser, Subcommand};
use hc_metadata::Isa;
use hcontainer::binary::Binary;
use hcontainer::supervisor::{self, RunOptions};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "hcontainer",
    version,
    about = "Run native C programs built by hcc and move them between CPUs of different ISAs while they run",
    long_about = "Run native C programs built by hcc and move them between CPUs of different ISAs while they run.\n\n\
A program built with `CC=hcc` is one ELF file holding an x86_64 and an aarch64 variant with every symbol at the \
same address. hcontainer runs either variant (the other ISA through qemu-user) and migrates a running process: \
the process dumps its state at a migration point, hcontainer rewrites the stack into an ISA-neutral snapshot, and \
the other variant restores it and continues. The source process exits only after the destination confirms."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the variants, sections, functions and sites of a program.
    Inspect {
        app: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Count the program's migration sites: the migratable share, and every
    /// site that cannot migrate, grouped by reason and function.
    Sites {
        app: PathBuf,
        /// Machine-readable output: {"total", "migratable", "share", "not_migratable": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Check that every variant has every symbol at the same address and that
    /// the metadata agrees with them; exits non-zero naming the first mismatch.
    Verify { app: PathBuf },
    /// Decode a dump or snapshot file and print it as JSON (memory summarized).
    Show { file: PathBuf },
    /// Rewrite a dump (kept with `run --keep`) into a snapshot, offline.
    Rewrite {
        dump: PathBuf,
        /// The program the dump was taken from.
        app: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Remove debug information from the program and every variant inside it
    /// (`strip --strip-debug` reaches only the primary's own sections).
    Strip {
        app: PathBuf,
        /// Write the result here instead of replacing APP.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Write one variant as a plain executable.
    Extract {
        #[arg(long)]
        isa: Isa,
        app: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Migrate a running program built by hcc to another ISA, now.
    ///
    /// The program may run under `hcontainer run` or have been started
    /// plainly (then `hcontainer adopt` is started in the background to
    /// supervise it from now on). The program reaches its next migration point, dumps and parks; the
    /// destination restores; only then does the source exit. If the program
    /// cannot migrate where it is, it keeps running and this retries for 10 s.
    /// The program's new PID is printed.
    ///
    /// Example: hcontainer migrate 4242 --to aarch64
    #[command(verbatim_doc_comment)]
    Migrate {
        /// PID of the program (or of the `hcontainer run` running it).
        pid: u32,
        /// ISA to move it to.
        #[arg(long)]
        to: Isa,
    },
    /// Write a checkpoint of a running program built by hcc.
    ///
    /// The checkpoint (an ISA-neutral snapshot and a manifest) can be
    /// restored later on any ISA, any number of times, with
    /// `hcontainer restore DIR`. The program stops after the checkpoint is on
    /// disk unless --leave-running is given.
    ///
    /// Example: hcontainer checkpoint 4242 -o ckpt --leave-running
    #[command(verbatim_doc_comment)]
    Checkpoint {
        /// PID of the program (or of the `hcontainer run` running it).
        pid: u32,
        /// Directory to write the checkpoint into.
        #[arg(short, long)]
        output: PathBuf,
        /// Keep the program running after the checkpoint.
        #[arg(long)]
        leave_running: bool,
    },
    /// Supervise a program built by hcc that was started without hcontainer.
    ///
    /// From then on `migrate` and `checkpoint` reach it as if `hcontainer
    /// run` had started it (they start `adopt` by themselves when needed).
    /// The program answers at its next migration point (SIGSTKFLT asks it).
    /// Once it has migrated, its original process stays as the one its
    /// parent knows: it holds no memory or files, passes signals on, and
    /// ends with the program's exit status.
    ///
    /// Example: ./app & hcontainer adopt $!
    #[command(verbatim_doc_comment)]
    Adopt {
        /// PID of the program.
        pid: u32,
        /// Print READY (or ERR <why>) on stdout once supervising, then detach stdout.
        #[arg(long, hide = true)]
        notify: bool,
    },
    /// Continue a program from a checkpoint, on any ISA.
    ///
    /// Files the program had open are reopened at their offsets; the
    /// program then runs as under `hcontainer run` (it can be migrated or
    /// checkpointed again).
    ///
    /// Example: hcontainer restore ckpt --isa aarch64
    #[command(verbatim_doc_comment)]
    Restore {
        /// A directory written by `hcontainer checkpoint`.
        dir: PathBuf,
        /// ISA to restore on (default: this machine's).
        #[arg(long)]
        isa: Option<Isa>,
    },
    /// Run a program on an ISA, optionally migrating it along a list of ISAs.
    ///
    /// Examples:
    ///   hcontainer run --isa aarch64 ./app arg1
    ///   hcontainer run --migrate x86_64,aarch64,x86_64 --at-point 1000 ./app
    ///   hcontainer run --migrate x86_64,aarch64 --every 50ms ./app
    #[command(verbatim_doc_comment)]
    Run {
        /// ISA to run on (default: this machine's). Other ISAs run under qemu-user.
        #[arg(long)]
        isa: Option<Isa>,
        /// ISAs to visit in order, comma separated; the program starts on the first.
        #[arg(long, value_delimiter = ',')]
        migrate: Vec<Isa>,
        /// Migrate at the Nth migration point reached, then again N points later.
        #[arg(long, value_name = "N")]
        at_point: Option<u64>,
        /// Migrate after this much run time on each ISA (e.g. 50ms, 2s).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        every: Option<Duration>,
        /// Keep dumps and snapshots in this directory.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        app: PathBuf,
        /// Arguments for the program.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "ms"));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 50ms, 2s)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "us" => v / 1e6,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s or us)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("hcontainer: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Cmd::Inspect { app, json } => {
            let bin = Binary::open(&app)?;
            let report = hcontainer::inspect::report(&bin)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", hcontainer::inspect::render(&report));
            }
            Ok(0)
        }
        Cmd::Sites { app, json } => {
            let bin = Binary::open(&app)?;
            let report = hcontainer::inspect::sites(&bin);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", hcontainer::inspect::render_sites(&report));
            }
            Ok(0)
        }
        Cmd::Verify { app } => {
            let bin = Binary::open(&app)?;
            match hcontainer::verify::verify(&bin) {
                Ok(lines) => {
                    for l in lines {
                        println!("ok: {l}");
                    }
                    println!("{}: verified", app.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("hcontainer: verify {}: FAILED: {e}", app.display());
                    Ok(1)
                }
            }
        }
        Cmd::Show { file } => {
            use hc_metadata::image::Image;
            let data = std::fs::read(&file)?;
            let snapshot = data.starts_with(hc_metadata::image::SNAP_MAGIC);
            // A migration's snapshot keeps its memory in the dump it names.
            let memory = match Image::memory_path(&data).filter(|_| snapshot) {
                Some(p) => Some(std::fs::read(&p).map_err(|e| {
                    anyhow::anyhow!("{}: its memory is in {p}: {e}", file.display())
                })?),
                None => None,
            };
            let img = Image::decode_with_memory(&data, snapshot, memory.as_deref())
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&hcontainer::inspect::image_json(&img))?
            );
            Ok(0)
        }
        Cmd::Rewrite { dump, app, output } => {
            let bin = Binary::open(&app)?;
            let data =
                std::fs::read(&dump).map_err(|e| anyhow::anyhow!("{}: {e}", dump.display()))?;
            let img = hc_metadata::image::Image::decode(&data, false)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dump.display()))?;
            let snap = hcontainer::rewrite::rewrite(&bin, &img)
                .map_err(|e| anyhow::anyhow!("{}: {e}", dump.display()))?;
            std::fs::write(&output, snap.encode())?;
            eprintln!(
                "hcontainer: {}: {} frames",
                output.display(),
                snap.frames.len()
            );
            Ok(0)
        }
        Cmd::Strip { app, output } => {
            let bin = Binary::open(&app)?;
            let stripped = bin.strip_debug()?;
            let out = output.unwrap_or_else(|| app.clone());
            hcontainer::binary::write_exe(&out, &stripped)?;
            eprintln!(
                "hcontainer: {}: {} -> {} bytes",
                out.display(),
                bin.data.len(),
                stripped.len()
            );
            Ok(0)
        }
        Cmd::Extract { isa, app, output } => {
            let bin = Binary::open(&app)?;
            let bytes = bin.variant(isa)?;
            let plain = if isa == Isa::PRIMARY {
                hc_metadata::container::strip_container_sections(bytes)?
            } else {
                bytes.to_vec()
            };
            hcontainer::binary::write_exe(&output, &plain)?;
            Ok(0)
        }
        Cmd::Adopt { pid, notify } => {
            let ready = |r: Result<(), String>| {
                let line = match r {
                    Ok(()) => "READY".to_string(),
                    Err(why) => format!("ERR {why}"),
                };
                if notify {
                    println!("{line}");
                    // Nothing more goes to whoever started us.
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    if let Ok(null) = std::fs::File::open("/dev/null") {
                        // SAFETY: dup2 onto stdout, which we own.
                        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1) };
                    }
                } else if line == "READY" {
                    eprintln!("hcontainer: supervising process {pid}");
                }
            };
            let code = supervisor::adopt(pid, ready)?;
            Ok(code.clamp(0, 255) as u8)
        }
        Cmd::Migrate { pid, to } => {
            if let Some(note) = hcontainer::control::ensure_supervised(pid)? {
                eprintln!("hcontainer: {note}");
            }
            let summary =
                hcontainer::control::request(pid, &hcontainer::control::Request::Migrate(to))?;
            eprintln!("hcontainer: {summary}");
            Ok(0)
        }
        Cmd::Checkpoint {
            pid,
            output,
            leave_running,
        } => {
            let dir = std::path::absolute(&output)?;
            let req = hcontainer::control::Request::Checkpoint { dir, leave_running };
            if let Some(note) = hcontainer::control::ensure_supervised(pid)? {
                eprintln!("hcontainer: {note}");
            }
            let summary = hcontainer::control::request(pid, &req)?;
            eprintln!("hcontainer: {summary}");
            Ok(0)
        }
        Cmd::Restore { dir, isa } => {
            let code = supervisor::restore(&dir, isa)?;
            Ok(code.clamp(0, 255) as u8)
        }
        Cmd::Run {
            isa,
            migrate,
            at_point,
            every,
            keep,
            app,
            args,
        } => {
            let bin = Binary::open(&app)?;
            if (at_point.is_some() || every.is_some()) && migrate.len() < 2 {
                anyhow::bail!("--at-point and --every need --migrate with at least two ISAs (e.g. --migrate x86_64,aarch64)");
            }
            if migrate.len() >= 2 && at_point.is_none() && every.is_none() {
                anyhow::bail!(
                    "--migrate needs --at-point N or --every DURATION to say when to migrate"
                );
            }
            let opts = RunOptions {
                isa,
                migrate,
                at_point,
                every,
                keep,
                restore: None,
            };
            let code = supervisor::run(&bin, &args, &opts)?;
            Ok(code.clamp(0, 255) as u8)
        }
    }
}
