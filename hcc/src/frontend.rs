//! The clang-22 front end, run once per ISA (DESIGN.md 3.1): each variant is
//! a correct program for its own ABI because each gets its own headers and
//! target, and every variant gets the same semantics flags.

use crate::args::Invocation;
use hc_metadata::Isa;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const CLANG: &str = "clang-22";
pub const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Flags every variant gets after the user's, so they win: same `char`
/// signedness, no fused multiply-add, nothing ISA-specific in the layout, and
/// the sections hld relies on. Frame pointers are clang's default for each
/// ISA: the unwinder reads CFI, so they are not forced (docs/DESIGN-NOTES.md).
pub const FORCED_FLAGS: &[&str] = &[
    "-fsigned-char",
    "-ffp-contract=off",
    "-fno-stack-protector",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
    "-fasynchronous-unwind-tables",
    "-fno-pic",
    "-fno-pie",
];

/// hcc's own headers, searched before musl's (`hcc/include/`).
const OWN_HEADERS: &[(&str, &str)] = &[
    (
        "bits/alltypes.h",
        include_str!("../include/bits/alltypes.h"),
    ),
    ("bits/setjmp.h", include_str!("../include/bits/setjmp.h")),
    ("bits/stat.h", include_str!("../include/bits/stat.h")),
];

/// A directory holding `OWN_HEADERS`, written once per user and content
/// (the headers travel inside the hcc binary, so an installed hcc needs no
/// data files). Required: the program's layouts of jmp_buf and struct stat
/// must be the ones the runtime and instrumentation expect.
fn own_include_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match write_own_headers() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hcc: error: {e}; set TMPDIR to a writable directory");
            std::process::exit(1);
        }
    })
}

fn write_own_headers() -> Result<PathBuf, String> {
    cached_dir("include", OWN_HEADERS, |tmp| {
        for (name, text) in OWN_HEADERS {
            let path = tmp.join(name);
            std::fs::create_dir_all(path.parent().expect("a header has a directory"))?;
            std::fs::write(&path, text)?;
        }
        Ok(())
    })
    .map_err(|e| {
        format!(
            "cannot write hcc's headers under {}: {e}",
            std::env::temp_dir().display()
        )
    })
}

/// `$TMPDIR/hcc-WHAT-UID-HASH`, HASH of `key`: made once per user and
/// content by `fill`, which writes into a temporary directory renamed into
/// place (another hcc may have won the race; its contents are the same).
fn cached_dir(
    what: &str,
    key: impl std::hash::Hash,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    use std::hash::Hasher;
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("hcc-{what}-{uid}-{:016x}", h.finish()));
    if dir.is_dir() {
        return Ok(dir);
    }
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let filled = std::fs::create_dir_all(&tmp).and_then(|_| fill(&tmp));
    if filled.is_err() || std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    match filled {
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(e),
        Ok(()) => Ok(dir),
    }
}

/// The kernel's header directories a program includes as `<linux/...>`,
/// `<asm/...>` and so on, as gcc finds them in /usr/include.
const KERNEL_HEADER_DIRS: &[&str] = &[
    "linux",
    "asm-generic",
    "drm",
    "misc",
    "mtd",
    "rdma",
    "scsi",
    "sound",
    "video",
    "xen",
];

/// A directory of links to `isa`'s kernel headers and nothing else (the
/// directories that hold them also hold glibc's headers, which must not
/// mix with musl's), or None if this machine has none.
fn kernel_include_dir(isa: Isa) -> Option<&'static Path> {
    static DIRS: OnceLock<Vec<(Isa, Option<PathBuf>)>> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| {
        Isa::ALL
            .iter()
            .map(|&i| (i, write_kernel_links(i)))
            .collect()
    });
    dirs.iter()
        .find(|(i, _)| *i == isa)
        .and_then(|(_, d)| d.as_deref())
}

fn write_kernel_links(isa: Isa) -> Option<PathBuf> {
    let (root, asm) = isa.info().kernel_headers;
    let mut links: Vec<(&str, PathBuf)> = KERNEL_HEADER_DIRS
        .iter()
        .map(|d| (*d, Path::new(root).join(d)))
        .chain([("asm", PathBuf::from(asm))])
        .filter(|(_, target)| target.is_dir())
        .collect();
    if !links.iter().any(|(name, _)| *name == "linux") {
        return None;
    }
    links.sort();
    cached_dir(&format!("kernel-{isa}"), &links, |tmp| {
        links
            .iter()
            .try_for_each(|(name, target)| std::os::unix::fs::symlink(target, tmp.join(name)))
    })
    .ok()
}

/// Include directories for an ISA: hcc's own headers, clang's, musl's,
/// then the kernel's (after every other, as gcc's /usr/include comes after
/// its -isystem directories).
pub fn system_includes(isa: Isa) -> Vec<OsString> {
    let mut dirs: Vec<OsString> = Vec::new();
    dirs.extend(["-isystem".into(), own_include_dir().into()]);
    dirs.extend([
        "-isystem".into(),
        format!("{LLVM_PREFIX}/lib/clang/22/include").into(),
        "-isystem".into(),
        isa.musl_include_dir().into(),
    ]);
    if let Some(k) = kernel_include_dir(isa) {
        dirs.extend(["-idirafter".into(), k.into()]);
    }
    dirs
}

/// The common part of a front-end command for one ISA.
pub fn base_command(isa: Isa, inv: &Invocation) -> Command {
    let mut cmd = Command::new(CLANG);
    cmd.arg(format!("--target={}", isa.info().triple));
    let nostdinc = inv.frontend.iter().any(|f| f == "-nostdinc");
    cmd.arg("-nostdinc");
    if !nostdinc {
        cmd.args(system_includes(isa));
    }
    // hcc's own warnings (-Whc-mismatch, -Wno-hc-mismatch) are not clang's.
    cmd.args(inv.frontend.iter().filter(|f| {
        let f = f.to_string_lossy();
        !f.starts_with("-Whc-") && !f.starts_with("-Wno-hc-")
    }));
    cmd.args(FORCED_FLAGS);
    cmd
}

/// The optimization level clang should see (it shapes the IR it emits, e.g.
/// lifetime markers and inline hints), as a flag.
pub fn opt_flag(inv: &Invocation) -> String {
    format!("-O{}", inv.opt_level.as_deref().unwrap_or("0"))
}

/// Command producing unoptimized bitcode for `src` on `isa`, written to `out`.
/// `depfile` adds the dependency flags (only for one ISA).
pub fn bitcode_command(
    isa: Isa,
    inv: &Invocation,
    src: &Path,
    out: &Path,
    depfile: Option<&[OsString]>,
) -> Command {
    let mut cmd = base_command(isa, inv);
    cmd.arg(opt_flag(inv));
    // hcc runs LLVM's optimizer itself, after the front end, in process.
    cmd.args(["-Xclang", "-disable-llvm-passes"]);
    // At -O0 clang marks every function optnone, which would also stop the
    // SSA repair after instrumentation; hcc's -O0 pipeline does no optimization anyway.
    cmd.args(["-Xclang", "-disable-O0-optnone"]);
    cmd.args(["-emit-llvm", "-c", "-o"]).arg(out);
    if let Some(dep) = depfile {
        cmd.args(dep);
    }
    source_arg(&mut cmd, inv, src);
    cmd
}

/// `src` as the front end's input, after the `-x` it was given.
fn source_arg(cmd: &mut Command, inv: &Invocation, src: &Path) {
    if let Some(lang) = inv.language(src) {
        cmd.args(["-x", lang]);
    }
    cmd.arg(src);
}

/// Dependency flags with gcc's defaults filled in: with -MD/-MMD and no -MF,
/// the file is the object's name with `.d`; the target defaults to the object.
pub fn depfile_flags(inv: &Invocation, object: &Path) -> Vec<OsString> {
    if inv.depfile.is_empty() {
        return Vec::new();
    }
    let mut flags = inv.depfile.clone();
    let has = |f: &str| {
        inv.depfile
            .iter()
            .any(|x| x.to_string_lossy().starts_with(f))
    };
    let writes_file = has("-MD") || has("-MMD");
    if writes_file && !has("-MF") {
        flags.push("-MF".into());
        flags.push(object.with_extension("d").into());
    }
    if !has("-MT") && !has("-MQ") {
        flags.push("-MT".into());
        flags.push(object.into());
    }
    flags
}

/// Runs the preprocessor only (`-E`) for the primary ISA.
pub fn preprocess_command(inv: &Invocation, src: &Path, out: Option<&PathBuf>) -> Command {
    let mut cmd = base_command(Isa::PRIMARY, inv);
    cmd.arg(opt_flag(inv));
    cmd.args(&inv.depfile);
    cmd.arg("-E");
    if let Some(o) = out {
        cmd.arg("-o").arg(o);
    }
    source_arg(&mut cmd, inv, src);
    cmd
}

/// A file (None: the source compiled) and its ranges of lines that differ.
pub type SpecificLines = (Option<String>, Vec<(u32, u32)>);

/// Lines of `src` and of the program's own headers that preprocess
/// differently on some ISA (`#if defined(__x86_64__)` and the like), as
/// ranges of line numbers per file (None: `src`), `src` first: there the variants are
/// different programs, which no consensus can make agree. System headers
/// (musl's, the compiler's: different per ISA by nature, and not the
/// user's to change) are left out. Empty when they agree everywhere; None
/// when the preprocessor fails.
pub fn isa_specific_lines(inv: &Invocation, src: &Path) -> Option<Vec<SpecificLines>> {
    let mut texts = Vec::new();
    for isa in Isa::ALL {
        let mut cmd = base_command(isa, inv);
        cmd.arg(opt_flag(inv)).arg("-E");
        source_arg(&mut cmd, inv, src);
        let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
        if !out.status.success() {
            return None;
        }
        texts.push(own_lines(&String::from_utf8_lossy(&out.stdout)));
    }
    // Files in the order the primary first reaches them, the main file first.
    let main = src.to_string_lossy();
    let main = main.strip_prefix("./").unwrap_or(&main).to_string();
    let mut files = vec![main.clone()];
    for t in &texts {
        for f in &t.order {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
    }
    let empty = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for file in files {
        let per: Vec<&std::collections::BTreeMap<u32, String>> = texts
            .iter()
            .map(|t| t.lines.get(&file).unwrap_or(&empty))
            .collect();
        let numbers: std::collections::BTreeSet<u32> =
            per.iter().flat_map(|t| t.keys().copied()).collect();
        let text = |t: &std::collections::BTreeMap<u32, String>, n: u32| {
            t.get(&n).map(|s| s.trim().to_string()).unwrap_or_default()
        };
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for n in numbers {
            if per.iter().all(|t| text(t, n) == text(per[0], n)) {
                continue;
            }
            match ranges.last_mut() {
                Some(r) if r.1 + 1 == n => r.1 = n,
                _ => ranges.push((n, n)),
            }
        }
        if !ranges.is_empty() {
            out.push(((file != main).then_some(file), ranges));
        }
    }
    Some(out)
}

/// Macros that name a CPU: the compilers' own and those gnulib's host CPU
/// check (`host-cpu-c-abi.m4`) writes into config.h.
const CPU_MACROS: &[&str] = &[
    "__i386__",
    "__i386",
    "i386",
    "__x86_64__",
    "__x86_64",
    "__x86_64_x32__",
    "__amd64__",
    "__amd64",
    "__aarch64__",
    "__arm64__",
    "__arm64_ilp32__",
    "__arm__",
    "__armhf__",
    "__riscv",
    "__powerpc__",
    "__powerpc64__",
    "__s390x__",
    "__mips__",
    "__sparc__",
];

/// Where the program's own files (not system headers) `#define` a macro
/// that names a CPU, as `isa` preprocesses `src`: (file, line, macro). Such
/// a definition holds in every variant, so each takes the code meant for
/// that one CPU. Empty when the preprocessor fails.
pub fn cpu_macro_definitions(inv: &Invocation, src: &Path, isa: Isa) -> Vec<(String, u32, String)> {
    let mut cmd = base_command(isa, inv);
    cmd.arg(opt_flag(inv)).args(["-E", "-dD"]);
    source_arg(&mut cmd, inv, src);
    let Ok(out) = cmd.stderr(std::process::Stdio::null()).output() else {
        return Vec::new();
    };
    let own = own_lines(&String::from_utf8_lossy(&out.stdout));
    let mut found = Vec::new();
    for file in &own.order {
        for (n, l) in &own.lines[file] {
            let mut words = l.split_whitespace();
            if words.next() == Some("#define") {
                let name = words.next().unwrap_or("");
                if CPU_MACROS.contains(&name) {
                    found.push((file.clone(), *n, name.to_string()));
                }
            }
        }
    }
    found
}

/// The non-blank lines `clang -E` output holds for each file that is not a
/// system header, by file and line number (`# N "file" flags` markers say
/// where each following line comes from; flag 3 marks a system header).
struct OwnLines {
    lines: std::collections::BTreeMap<String, std::collections::BTreeMap<u32, String>>,
    /// Files in the order their first line appears.
    order: Vec<String>,
}

fn own_lines(out: &str) -> OwnLines {
    let mut own = OwnLines {
        lines: std::collections::BTreeMap::new(),
        order: Vec::new(),
    };
    let (mut file, mut line): (Option<String>, u32) = (None, 0);
    for l in out.lines() {
        if let Some(marker) = l.strip_prefix("# ") {
            let mut parts = marker.splitn(2, ' ');
            if let (Some(n), Some(rest)) = (parts.next(), parts.next()) {
                if let Ok(n) = n.parse::<u32>() {
                    let mut quoted = rest.splitn(3, '"');
                    let name = quoted.nth(1).unwrap_or("");
                    let system = quoted
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .any(|f| f == "3");
                    let name = name.strip_prefix("./").unwrap_or(name);
                    file = (!system && !name.starts_with('<')).then(|| name.to_string());
                    line = n;
                    continue;
                }
            }
        }
        if let Some(f) = &file {
            if !l.trim().is_empty() {
                if !own.lines.contains_key(f) {
                    own.order.push(f.clone());
                }
                own.lines
                    .entry(f.clone())
                    .or_default()
                    .insert(line, l.to_string());
            }
        }
        line += 1;
    }
    own
}

/// Shell-style rendering of a command for -v.
pub fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        s.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "\"'\\$`".contains(c)) {
            s.push('\'');
            s.push_str(&a.replace('\'', "'\\''"));
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}
