//! The compiler driver: what `hcc` does for each mode, gcc-style.

use crate::args::{Input, Invocation, Mode, Query};
use crate::frontend;
use crate::pipeline::{self, OptLevel};
use hc_metadata::container;
use hc_metadata::Isa;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const HELP: &str = "\
Usage: hcc [options] file...

hcc is a drop-in C compiler (gcc/clang flags) that builds migratable programs:
every object and executable holds an x86_64 and an aarch64 variant with every
symbol at the same address, plus the metadata `hcontainer` needs to move a
running process between the two.

Modes:
  (none)        compile and link into an executable (default a.out)
  -c            compile to multi-ISA objects (.o); `ar` and `ranlib` work on them
  -E            preprocess (for the x86_64 variant) to stdout or -o
Common options:
  -o FILE  -I DIR  -D NAME[=V]  -U NAME  -include FILE  -isystem DIR  -std=STD
  -O0 -O1 -O2 -O3 -Os -Oz  -g  -W...  -w  -f...  -l LIB  -L DIR  -Wl,ARGS
  -M -MM -MD -MMD -MF -MT -MQ -MP   dependency files
  -v   print the commands hcc runs     -###  print them without running
Not supported, with a clear error: -m*/-march (ISA-specific), -shared, -pie,
  assembly input, -flto, -fsanitize, -ffast-math.
Diagnostics: functions that cannot migrate are reported as
  warning: ... [-Whc-mismatch]  (silence with -Wno-hc-mismatch or -w)
Environment: HCC_TIME=1 prints how long each compile step (per ISA) and
  each link step took; HCC_DUMP_IR=DIR writes each ISA's IR at every stage.

Run `hcontainer --help` for running and migrating the programs hcc builds.
";

/// A driver failure: already explained on stderr, or explained here.
#[derive(Debug)]
pub struct Failure(pub String);

type Result<T> = std::result::Result<T, Failure>;

fn fail<T>(msg: impl Into<String>) -> Result<T> {
    Err(Failure(msg.into()))
}

/// Runs one hcc invocation.
pub fn run(inv: &Invocation) -> Result<()> {
    let quiet = inv.frontend.iter().any(|f| f == "-w");
    if !quiet {
        for w in &inv.warnings {
            eprintln!("hcc: warning: {w}");
        }
    }
    if inv.verbose {
        for n in &inv.notes {
            eprintln!("hcc: note: {n}");
        }
        eprintln!(
            "hcc (hcontainer) {} — variants: {}",
            env!("CARGO_PKG_VERSION"),
            isa_list()
        );
    }
    if let Some((q, arg)) = &inv.query {
        return answer_query(*q, arg);
    }
    let sources: Vec<&PathBuf> = inv
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Source(p) => Some(p),
            _ => None,
        })
        .collect();
    if inv.inputs.is_empty() {
        if inv.verbose {
            return Ok(());
        }
        return fail("no input files");
    }
    match inv.mode {
        Mode::Preprocess => {
            for s in &sources {
                let mut cmd = frontend::preprocess_command(inv, s, inv.output.as_ref());
                run_command(inv, &mut cmd)?;
            }
            Ok(())
        }
        Mode::Assemble => fail(
            "-S is not supported: hcc's output is one object holding a variant per ISA; use -c \
             (inspect a variant's code with `objdump -d` on the object)",
        ),
        Mode::Compile => {
            if inv.output.is_some() && sources.len() > 1 {
                return fail("cannot specify -o with -c and multiple source files");
            }
            if sources.is_empty() {
                return fail("-c needs at least one C source file");
            }
            sources.par_iter().try_for_each(|s| {
                let out = inv.output.clone().unwrap_or_else(|| default_object(s));
                compile_file(inv, s, &out)
            })
        }
        Mode::Link => link(inv),
    }
}

fn isa_list() -> String {
    Isa::ALL.map(|i| i.name()).join(", ")
}

fn default_object(src: &Path) -> PathBuf {
    PathBuf::from(src.file_name().unwrap_or(src.as_os_str())).with_extension("o")
}

fn run_command(inv: &Invocation, cmd: &mut Command) -> Result<()> {
    if inv.verbose {
        eprintln!(" {}", frontend::render(cmd));
    }
    if inv.dry_run {
        return Ok(());
    }
    let status = cmd.status().map_err(|e| {
        Failure(format!(
            "cannot run {}: {e}",
            cmd.get_program().to_string_lossy()
        ))
    })?;
    if !status.success() {
        return Err(Failure(String::new()));
    }
    Ok(())
}

/// Compiles one C file into a multi-ISA object at `out`.
pub fn compile_file(inv: &Invocation, src: &Path, out: &Path) -> Result<()> {
    if !src.exists() {
        return fail(format!("{}: no such file or directory", src.display()));
    }
    let tmp = tempfile::Builder::new()
        .prefix("hcc-")
        .tempdir()
        .map_err(|e| Failure(format!("cannot create a temporary directory: {e}")))?;
    let deps = frontend::depfile_flags(inv, out);
    // Front ends for every ISA run at once; dependency files come from the
    // primary ISA's run only, so they are written once.
    let mut children = Vec::new();
    for isa in Isa::ALL {
        let bc = tmp.path().join(format!("{}.bc", isa.name()));
        let dep = (isa == Isa::PRIMARY && !deps.is_empty()).then_some(deps.as_slice());
        let mut cmd = frontend::bitcode_command(isa, inv, src, &bc, dep);
        if inv.verbose {
            eprintln!(" {}", frontend::render(&cmd));
        }
        if inv.dry_run {
            continue;
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|e| {
            Failure(format!(
                "cannot run {}: {e} (run scripts/setup.sh)",
                frontend::CLANG
            ))
        })?;
        children.push((isa, bc, child));
    }
    if inv.dry_run {
        return Ok(());
    }
    let mut bitcode = BTreeMap::new();
    let mut failed = false;
    for (isa, bc, child) in children {
        let output = child
            .wait_with_output()
            .map_err(|e| Failure(format!("front end for {isa}: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Every variant sees the same source, so diagnostics are shown once,
        // from the primary ISA, unless another ISA alone fails.
        if isa == Isa::PRIMARY {
            eprint!("{stderr}");
        } else if !output.status.success() && !failed {
            eprint!("{stderr}");
            eprintln!("hcc: note: the errors above are from the {isa} variant");
            note_cpu_macros(inv, src, isa);
        }
        if !output.status.success() {
            failed = true;
            continue;
        }
        let data = std::fs::read(&bc).map_err(|e| Failure(format!("{}: {e}", bc.display())))?;
        bitcode.insert(isa, data);
    }
    if failed {
        return Err(Failure(String::new()));
    }
    let level = OptLevel::from_flag(inv.opt_level.as_deref());
    let source = src.display().to_string();
    let unit = pipeline::compile_unit(&bitcode, &source, level).map_err(|e| {
        // "aarch64: <inline asm> ...": one variant's back end refused it.
        if let Some(isa) = Isa::ALL
            .into_iter()
            .find(|i| *i != Isa::PRIMARY && e.starts_with(&format!("{i}: ")))
        {
            eprintln!("hcc: error: {}: {e}", src.display());
            note_cpu_macros(inv, src, isa);
            return Failure(String::new());
        }
        Failure(format!("{}: {e}", src.display()))
    })?;
    let silenced = inv
        .frontend
        .iter()
        .any(|f| f == "-w" || f == "-Wno-hc-mismatch");
    if !silenced {
        for (sym, why) in &unit.mismatches {
            eprintln!(
                "{}: warning: function '{sym}' is not migratable: {why} [-Whc-mismatch]",
                src.display()
            );
        }
        if !unit.mismatches.is_empty() {
            note_isa_specific_source(inv, src);
        }
    }
    let primary = &unit.objects[&Isa::PRIMARY];
    let site_table = unit.sites.encode();
    let names: Vec<String> = Isa::ALL
        .iter()
        .filter(|i| **i != Isa::PRIMARY)
        .map(|i| container::object_section(*i))
        .collect();
    let mut sections: Vec<(&str, &[u8])> = vec![(hc_metadata::sites::SECTION, &site_table)];
    for (isa, name) in Isa::ALL.iter().filter(|i| **i != Isa::PRIMARY).zip(&names) {
        sections.push((name, &unit.objects[isa]));
    }
    let packed = container::add_sections(primary, &sections)
        .map_err(|e| Failure(format!("{}: packing the object: {e}", src.display())))?;
    std::fs::write(out, packed)
        .map_err(|e| Failure(format!("cannot write {}: {e}", out.display())))?;
    Ok(())
}

/// Finds a sibling tool (hld) next to this executable, else on PATH.
pub fn find_tool(name: &str) -> Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join(name);
            if p.exists() {
                return Ok(p);
            }
        }
    }
    which::which(name).map_err(|_| {
        Failure(format!(
            "cannot find '{name}': install hcontainer's binaries together (cargo build --release puts them in target/release)"
        ))
    })
}

fn link(inv: &Invocation) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("hcc-link-")
        .tempdir()
        .map_err(|e| Failure(format!("cannot create a temporary directory: {e}")))?;
    // Compile sources first (in parallel), keeping command-line order for the link.
    let jobs: Vec<(usize, &PathBuf, PathBuf)> = inv
        .inputs
        .iter()
        .enumerate()
        .filter_map(|(i, inp)| match inp {
            Input::Source(p) => Some((i, p, tmp.path().join(format!("{i}.o")))),
            _ => None,
        })
        .collect();
    jobs.par_iter()
        .try_for_each(|(_, src, obj)| compile_file(inv, src, obj))?;
    let mut cmd = Command::new(find_tool("hld")?);
    let out = inv.output.clone().unwrap_or_else(|| PathBuf::from("a.out"));
    cmd.arg("-o").arg(&out);
    for l in &inv.link_paths {
        cmd.arg(format!("-L{}", l.display()));
    }
    cmd.args(&inv.link_flags);
    for a in &inv.linker_args {
        let mut s = OsString::from("--ld-arg=");
        s.push(a);
        cmd.arg(s);
    }
    for (i, inp) in inv.inputs.iter().enumerate() {
        match inp {
            Input::Source(_) => {
                cmd.arg(tmp.path().join(format!("{i}.o")));
            }
            Input::Object(p) => {
                cmd.arg(p);
            }
            Input::Library(l) => {
                cmd.arg(format!("-l{l}"));
            }
        }
    }
    if inv.verbose {
        cmd.arg("-v");
    }
    run_command(inv, &mut cmd)
}

fn answer_query(q: Query, arg: &str) -> Result<()> {
    let primary = Isa::PRIMARY;
    match q {
        Query::Help => print!("{HELP}"),
        Query::Version => {
            let clang = Command::new(frontend::CLANG)
                .arg("--version")
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.lines().next().map(str::to_string))
                .unwrap_or_else(|| "clang-22 not found (run scripts/setup.sh)".into());
            println!("hcc (hcontainer) {}", env!("CARGO_PKG_VERSION"));
            println!("front end: {clang}");
            println!(
                "Target: {} (variants: {})",
                primary.info().triple,
                isa_list()
            );
        }
        Query::DumpVersion => println!("22"),
        Query::DumpMachine | Query::PrintMultiarch => println!("{}", primary.info().triple),
        Query::PrintFileName => {
            let p = Path::new(&primary.musl_lib_dir()).join(arg);
            if p.exists() {
                println!("{}", p.display());
            } else {
                println!("{arg}");
            }
        }
        Query::PrintProgName => println!("{arg}"),
        Query::PrintLibgccFileName => println!("{}", primary.info().libgcc),
        Query::PrintSearchDirs => {
            println!("install: {}/lib/clang/22/", frontend::LLVM_PREFIX);
            println!("programs: ={}/bin", frontend::LLVM_PREFIX);
            println!("libraries: ={}", primary.musl_lib_dir());
        }
    }
    Ok(())
}

/// After a variant other than the primary failed: if the program itself
/// defines a CPU's macro (config.h's `#define __i386__ 1`), say so — that
/// variant was then compiled as code for that CPU. gnulib's host CPU check
/// writes such lines: its `#if defined __x86_64__ ... #else error` probe
/// fails under hcc (the aarch64 variant errs), so it settles on i386.
fn note_cpu_macros(inv: &Invocation, src: &Path, isa: Isa) {
    let found = frontend::cpu_macro_definitions(inv, src, isa);
    let Some((file, line, name)) = found.first() else {
        return;
    };
    eprintln!(
        "{file}:{line}: note: the program defines {name}, a CPU's macro, in every variant ({isa} included), so each is compiled as code for that CPU"
    );
    eprintln!(
        "hcc: note: a configure check that names the host CPU cannot name one for a multi-ISA build; for gnulib's (a \"CPU and C ABI indicator\" in config.h), run configure with gl_cv_host_cpu_c_abi=no"
    );
}

/// After -Whc-mismatch warnings: where the source itself differs between
/// the ISAs, say so, since no consensus can make such code agree (lz4's
/// `#if defined(__x86_64__)` choice of decoder loop, say) and the user can
/// (by defining the macro that picks one branch for every ISA).
fn note_isa_specific_source(inv: &Invocation, src: &Path) {
    let Some(files) = frontend::isa_specific_lines(inv, src) else {
        return;
    };
    if files.is_empty() {
        return;
    }
    const SHOWN: usize = 8;
    let total: usize = files.iter().map(|(_, r)| r.len()).sum();
    let mut shown = 0;
    let mut parts = Vec::new();
    for (file, ranges) in &files {
        if shown >= SHOWN {
            break;
        }
        let take = ranges.len().min(SHOWN - shown);
        shown += take;
        let list: Vec<String> = ranges[..take]
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let one = ranges.len() == 1 && ranges[0].0 == ranges[0].1;
        let word = if one { "line" } else { "lines" };
        let of = file
            .as_ref()
            .map(|f| format!(" of {f}"))
            .unwrap_or_default();
        parts.push(format!("{word} {}{of}", list.join(", ")));
    }
    if total > shown {
        parts.push(format!("and {} more", total - shown));
    }
    let isas: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
    let one_line = total == 1 && files[0].1[0].0 == files[0].1[0].1;
    let verb = if one_line {
        "preprocesses"
    } else {
        "preprocess"
    };
    eprintln!(
        "{}: note: the source is not the same on every ISA: {} {verb} differently for {}, and functions built from there may not migrate; define the macros that pick one branch for every ISA (-D...)",
        src.display(),
        parts.join("; "),
        isas.join(" and "),
    );
}
