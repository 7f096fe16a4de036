//! gcc/clang-compatible command-line parsing.
//!
//! One sorted table says, for every flag hcc knows, how its value attaches and
//! what the driver does with it. Unknown flags are an error that names the
//! flag: a silently wrong build is worse than a failed one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How a flag's value is attached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Value {
    /// No value: `-c`.
    None,
    /// The next argument: `-include foo.h`.
    Separate,
    /// Glued to the flag: `-std=c99`, `-O2`, `-Wall`.
    Joined,
    /// Either: `-Ifoo` or `-I foo`.
    JoinedOrSeparate,
}

/// What the driver does with a flag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Mode(Mode),
    Output,
    /// Passed to every front-end run (preprocessor and compiler flags).
    Frontend,
    /// Dependency-file flags: passed to the front end of one ISA only, so the
    /// file is written once.
    Depfile,
    OptLevel,
    Language,
    /// `-l` / `-L`: kept in order for the link.
    LinkInput,
    LinkPath,
    /// `-Wl,a,b`: forwarded to every variant's link.
    LinkerCommaList,
    /// `-Xlinker a`.
    LinkerArg,
    /// Link-time flags the static musl link satisfies anyway.
    LinkIgnored,
    /// `-nostdlib` and friends: forwarded to hld.
    LinkFlag,
    /// `-pthread`: a define for the front end, nothing for the link (musl's libc has pthreads).
    Pthread,
    /// Accepted and dropped; the note says why.
    Ignore(&'static str),
    /// Accepted, dropped with a warning; the text says why.
    WarnIgnore(&'static str),
    /// Refused; the text says why and what to do.
    Unsupported(&'static str),
    Verbose,
    DryRun,
    Query(Query),
}

/// Questions build systems ask the compiler.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Query {
    Version,
    DumpVersion,
    DumpMachine,
    PrintFileName,
    PrintProgName,
    PrintSearchDirs,
    PrintLibgccFileName,
    PrintMultiarch,
    Help,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Mode {
    /// Compile and link (no -c/-S/-E).
    #[default]
    Link,
    /// `-c`
    Compile,
    /// `-S`
    Assemble,
    /// `-E`
    Preprocess,
}

struct Spec {
    name: &'static str,
    value: Value,
    action: Action,
}

const fn spec(name: &'static str, value: Value, action: Action) -> Spec {
    Spec {
        name,
        value,
        action,
    }
}

const ISA_FLAG: &str = "is ISA-specific: hcc builds every ISA variant from one command line, so \
     a flag for one CPU cannot apply to the others; remove it";

use Action::*;
use Value::{Joined, JoinedOrSeparate, None as Plain, Separate};

/// Sorted by name (checked in debug builds). Joined entries match as prefixes;
/// the longest match wins.
static TABLE: &[Spec] = &[
    spec("-###", Plain, DryRun),
    spec("--help", Plain, Query(self::Query::Help)),
    spec("--param", Separate, Frontend),
    spec("--print-file-name=", Joined, Query(self::Query::PrintFileName)),
    spec("--print-prog-name=", Joined, Query(self::Query::PrintProgName)),
    spec("--target=", Joined, Unsupported(ISA_FLAG)),
    spec("--version", Plain, Query(self::Query::Version)),
    spec("-C", Plain, Frontend),
    spec("-D", JoinedOrSeparate, Frontend),
    spec("-E", Plain, Mode(self::Mode::Preprocess)),
    spec("-H", Plain, Frontend),
    spec("-I", JoinedOrSeparate, Frontend),
    spec("-L", JoinedOrSeparate, LinkPath),
    spec("-M", Plain, Depfile),
    spec("-MD", Plain, Depfile),
    spec("-MF", JoinedOrSeparate, Depfile),
    spec("-MG", Plain, Depfile),
    spec("-MM", Plain, Depfile),
    spec("-MMD", Plain, Depfile),
    spec("-MP", Plain, Depfile),
    spec("-MQ", JoinedOrSeparate, Depfile),
    spec("-MT", JoinedOrSeparate, Depfile),
    spec("-O", Joined, OptLevel),
    spec("-P", Plain, Frontend),
    spec("-Q", Plain, Ignore("gcc statistics")),
    spec("-S", Plain, Mode(self::Mode::Assemble)),
    spec("-U", JoinedOrSeparate, Frontend),
    spec("-W", Joined, Frontend),
    spec("-Wa,", Joined, WarnIgnore("hcc does not run an assembler on C input; -Wa, options have no effect")),
    spec("-Wl,", Joined, LinkerCommaList),
    spec("-Wp,", Joined, Frontend),
    spec("-Xassembler", Separate, WarnIgnore("hcc does not run an assembler on C input")),
    spec("-Xlinker", Separate, LinkerArg),
    spec("-ansi", Plain, Frontend),
    spec("-arch", Separate, Unsupported(ISA_FLAG)),
    spec("-c", Plain, Mode(self::Mode::Compile)),
    spec("-dumpfullversion", Plain, Query(self::Query::DumpVersion)),
    spec("-dumpmachine", Plain, Query(self::Query::DumpMachine)),
    spec("-dumpversion", Plain, Query(self::Query::DumpVersion)),
    spec("-e", JoinedOrSeparate, LinkFlag),
    spec("-f", Joined, Frontend),
    spec("-fPIC", Plain, Ignore("output is static; position-independent code is not needed")),
    spec("-fPIE", Plain, Ignore("output is static")),
    spec("-fcommon", Plain, WarnIgnore("common symbols cannot be given one address in every variant; -fno-common is kept")),
    spec("-fexceptions", Plain, WarnIgnore("C code needs no unwinding through frames; -fexceptions is ignored")),
    spec("-ffast-math", Plain, Unsupported("lets each ISA round differently, so migrated programs would compute different results; remove it")),
    spec("-ffp-contract=", Joined, WarnIgnore("fused multiply-add rounds differently on each ISA; hcc keeps -ffp-contract=off so every variant computes the same bytes")),
    spec("-flto", Joined, Unsupported("hcc already optimizes every translation unit for each ISA; link-time optimization is not supported")),
    spec("-fno-PIC", Plain, Ignore("output is static")),
    spec("-fno-PIE", Plain, Ignore("output is static")),
    spec("-fno-omit-frame-pointer", Plain, Frontend),
    spec("-fno-pic", Plain, Ignore("output is static")),
    spec("-fno-pie", Plain, Ignore("output is static")),
    spec("-fno-stack-protector", Plain, Ignore("stack protector is always off")),
    spec("-fomit-frame-pointer", Plain, Frontend),
    spec("-fopenmp", Joined, Unsupported("OpenMP runtimes are not migratable yet")),
    spec("-fpic", Plain, Ignore("output is static; position-independent code is not needed")),
    spec("-fpie", Plain, Ignore("output is static")),
    spec("-fprofile-", Joined, Unsupported("profiling runtimes are not supported by hcc")),
    spec("-fsanitize", Joined, Unsupported("sanitizer runtimes are not supported by hcc")),
    spec("-fstack-protector", Joined, WarnIgnore("stack protector is off in every variant")),
    spec("-g", Joined, Frontend),
    spec("-idirafter", JoinedOrSeparate, Frontend),
    spec("-imacros", JoinedOrSeparate, Frontend),
    spec("-include", JoinedOrSeparate, Frontend),
    spec("-iprefix", JoinedOrSeparate, Frontend),
    spec("-iquote", JoinedOrSeparate, Frontend),
    spec("-isysroot", JoinedOrSeparate, Unsupported("hcc builds against Debian's musl for every ISA; a sysroot cannot apply to all variants")),
    spec("-isystem", JoinedOrSeparate, Frontend),
    spec("-iwithprefix", JoinedOrSeparate, Frontend),
    spec("-l", JoinedOrSeparate, LinkInput),
    spec("-m", Joined, Unsupported(ISA_FLAG)),
    spec("-m64", Plain, Ignore("every variant is 64-bit")),
    spec("-no-pie", Plain, Ignore("output is static")),
    spec("-nodefaultlibs", Plain, LinkFlag),
    spec("-nostartfiles", Plain, LinkFlag),
    spec("-nostdinc", Plain, Frontend),
    spec("-nostdlib", Plain, LinkFlag),
    spec("-o", JoinedOrSeparate, Output),
    spec("-pedantic", Plain, Frontend),
    spec("-pedantic-errors", Plain, Frontend),
    spec("-pg", Plain, Unsupported("profiling runtimes are not supported by hcc")),
    spec("-pie", Plain, Unsupported("hcc links static executables (every variant at the same addresses); remove -pie")),
    spec("-pipe", Plain, Ignore("no intermediate files to pipe")),
    spec("-print-file-name=", Joined, Query(self::Query::PrintFileName)),
    spec("-print-libgcc-file-name", Plain, Query(self::Query::PrintLibgccFileName)),
    spec("-print-multiarch", Plain, Query(self::Query::PrintMultiarch)),
    spec("-print-prog-name=", Joined, Query(self::Query::PrintProgName)),
    spec("-print-search-dirs", Plain, Query(self::Query::PrintSearchDirs)),
    spec("-pthread", Plain, Pthread),
    spec("-rdynamic", Plain, Ignore("static executables export no dynamic symbols")),
    spec("-s", Plain, LinkFlag),
    spec("-save-temps", Joined, WarnIgnore("intermediate files are kept in memory")),
    spec("-shared", Plain, Unsupported("shared libraries cannot be migrated; hcc links static executables only (configure with --disable-shared, or build only the program and its static libraries: `make <program>`, CMake's static targets)")),
    spec("-static", Plain, LinkIgnored),
    spec("-static-libgcc", Plain, LinkIgnored),
    spec("-static-pie", Plain, Unsupported("hcc links static executables at fixed addresses (every variant at the same addresses), not position-independent ones; use -static")),
    spec("-std=", Joined, Frontend),
    spec("-target", Separate, Unsupported(ISA_FLAG)),
    spec("-traditional-cpp", Plain, Frontend),
    spec("-u", JoinedOrSeparate, LinkFlag),
    spec("-v", Plain, Verbose),
    spec("-w", Plain, Frontend),
    spec("-x", JoinedOrSeparate, Language),
];

/// One input in command-line order (order matters for the link).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A C source (or preprocessed C, `.i`).
    Source(PathBuf),
    /// An object or archive for the link.
    Object(PathBuf),
    /// `-lfoo`
    Library(String),
}

/// The parsed command line.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    pub mode: Mode,
    pub output: Option<PathBuf>,
    pub inputs: Vec<Input>,
    /// Flags for every front-end run, in command-line order.
    pub frontend: Vec<OsString>,
    /// Dependency-file flags, for one front-end run.
    pub depfile: Vec<OsString>,
    /// `-O` level as written after `-O` ("2", "s", "" for plain -O).
    pub opt_level: Option<String>,
    pub link_paths: Vec<PathBuf>,
    /// Extra arguments forwarded to every variant's ld.lld.
    pub linker_args: Vec<OsString>,
    /// `-nostdlib` and friends.
    pub link_flags: Vec<OsString>,
    pub verbose: bool,
    pub dry_run: bool,
    pub query: Option<(Query, String)>,
    /// Warnings to print (flags ignored with a reason).
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    /// Sources a `-x` before them gave a language (gcc: it holds for every
    /// input after it until `-x none`): the front end is told so, or clang
    /// takes a name like `builtins.def.in` for a linker input.
    pub languages: std::collections::HashMap<PathBuf, String>,
}

impl Invocation {
    /// The language `-x` gave `src`, if any.
    pub fn language(&self, src: &Path) -> Option<&str> {
        self.languages.get(src).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("unknown argument '{0}'; hcc accepts gcc/clang flags (see hcc --help)")]
    Unknown(String),
    #[error("argument to '{0}' is missing (expected 1 value)")]
    MissingValue(String),
    #[error("'{flag}' {why}")]
    Unsupported { flag: String, why: String },
    #[error("cannot read response file '{path}': {error}")]
    ResponseFile { path: String, error: String },
    #[error("language '{0}' is not supported (hcc compiles C: use -x c)")]
    Language(String),
    #[error("input '{path}': {why}")]
    Input { path: String, why: String },
    #[error("-O{0}: unknown optimization level (use -O0, -O1, -O2, -O3, -Os or -Oz)")]
    OptLevel(String),
}

fn lookup(arg: &str) -> Option<&'static Spec> {
    debug_assert!(
        TABLE.windows(2).all(|w| w[0].name < w[1].name),
        "flag table must be sorted"
    );
    let mut best: Option<&Spec> = None;
    for s in TABLE {
        let matches = match s.value {
            Plain | Separate => arg == s.name,
            Joined | JoinedOrSeparate => arg.starts_with(s.name),
        };
        if matches && best.is_none_or(|b| s.name.len() > b.name.len()) {
            best = Some(s);
        }
    }
    best
}

/// Expands `@file` response files (gcc syntax: whitespace separated, quotes and
/// backslash escapes), recursively.
pub fn expand_response_files(args: Vec<String>) -> Result<Vec<String>, ArgError> {
    let mut out = Vec::new();
    for a in args {
        if let Some(path) = a.strip_prefix('@') {
            let text = std::fs::read_to_string(path).map_err(|e| ArgError::ResponseFile {
                path: path.to_string(),
                error: e.to_string(),
            })?;
            out.extend(expand_response_files(split_response(&text))?);
        } else {
            out.push(a);
        }
    }
    Ok(out)
}

fn split_response(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    have = true;
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                have = true;
            }
            (None, c) if c.is_whitespace() => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (None, c) => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

/// Parses hcc's arguments (without argv[0]).
pub fn parse(args: Vec<String>) -> Result<Invocation, ArgError> {
    let args = expand_response_files(args)?;
    let mut inv = Invocation::default();
    let mut language: Option<String> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with('-') || arg == "-" {
            classify_input(&mut inv, &arg, language.as_deref())?;
            continue;
        }
        let Some(s) = lookup(&arg) else {
            return Err(ArgError::Unknown(arg));
        };
        // The flag itself, and its value if it has one.
        let value: Option<String> = match s.value {
            Plain => None,
            Joined => Some(arg[s.name.len()..].to_string()),
            Separate => Some(
                it.next()
                    .ok_or_else(|| ArgError::MissingValue(arg.clone()))?,
            ),
            JoinedOrSeparate => {
                if arg.len() > s.name.len() {
                    Some(arg[s.name.len()..].to_string())
                } else {
                    Some(
                        it.next()
                            .ok_or_else(|| ArgError::MissingValue(arg.clone()))?,
                    )
                }
            }
        };
        let separate = matches!(s.value, Separate)
            || (matches!(s.value, JoinedOrSeparate) && arg.len() == s.name.len());
        let push_flag = |list: &mut Vec<OsString>| {
            list.push(arg.clone().into());
            if separate {
                list.push(value.clone().unwrap_or_default().into());
            }
        };
        match s.action {
            Mode(m) => inv.mode = m,
            Output => inv.output = value.map(PathBuf::from),
            Frontend => push_flag(&mut inv.frontend),
            Depfile => push_flag(&mut inv.depfile),
            OptLevel => {
                let v = value.unwrap_or_default();
                match v.as_str() {
                    "" | "0" | "1" | "2" | "3" | "s" | "z" | "g" => inv.opt_level = Some(v),
                    "fast" => return Err(ArgError::Unsupported {
                        flag: arg,
                        why: "implies -ffast-math, which lets each ISA round differently; use -O3"
                            .into(),
                    }),
                    _ => return Err(ArgError::OptLevel(v)),
                }
            }
            Language => {
                let v = value.unwrap_or_default();
                match v.as_str() {
                    "c" | "cpp-output" => language = Some(v),
                    "none" => language = None,
                    _ => return Err(ArgError::Language(v)),
                }
            }
            LinkInput => inv.inputs.push(Input::Library(value.unwrap_or_default())),
            LinkPath => inv
                .link_paths
                .push(PathBuf::from(value.unwrap_or_default())),
            LinkerCommaList => {
                for part in value
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                {
                    inv.linker_args.push(part.into());
                }
            }
            LinkerArg => inv.linker_args.push(value.unwrap_or_default().into()),
            LinkFlag => push_flag(&mut inv.link_flags),
            LinkIgnored => {}
            Pthread => inv.frontend.push("-pthread".into()),
            Ignore(why) => inv.notes.push(format!("'{arg}' ignored: {why}")),
            WarnIgnore(why) => inv.warnings.push(format!("'{arg}' ignored: {why}")),
            Unsupported(why) => {
                return Err(ArgError::Unsupported {
                    flag: arg,
                    why: why.to_string(),
                })
            }
            Verbose => inv.verbose = true,
            DryRun => {
                inv.dry_run = true;
                inv.verbose = true;
            }
            Query(q) => inv.query = Some((q, value.unwrap_or_default())),
        }
    }
    Ok(inv)
}

fn classify_input(inv: &mut Invocation, arg: &str, language: Option<&str>) -> Result<(), ArgError> {
    let path = PathBuf::from(arg);
    if let Some(lang) = language {
        inv.languages.insert(path.clone(), lang.to_string());
        inv.inputs.push(Input::Source(path));
        return Ok(());
    }
    let ext = Path::new(arg)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    match ext {
        "c" | "i" => inv.inputs.push(Input::Source(path)),
        "o" | "a" | "lo" | "obj" => inv.inputs.push(Input::Object(path)),
        "s" | "S" | "asm" => {
            return Err(ArgError::Input {
                path: arg.into(),
                why:
                    "assembly input is not supported: hcc needs one source that compiles for every \
                      ISA; build the project without its assembly (most have a switch for that, \
                      e.g. zstd's `make ZSTD_NO_ASM=1`, a configure option like --disable-asm, or \
                      a -D... that selects the C code) or write this part in C"
                        .into(),
            })
        }
        "so" => return Err(ArgError::Input {
            path: arg.into(),
            why: "shared libraries cannot be linked: hcc links static executables; use the static \
                      archive (.a) built with CC=hcc"
                .into(),
        }),
        "cc" | "cpp" | "cxx" | "C" | "m" | "mm" | "f" | "f90" => {
            return Err(ArgError::Input {
                path: arg.into(),
                why: "only C is supported".into(),
            })
        }
        "h" => {
            return Err(ArgError::Input {
                path: arg.into(),
                why: "precompiled headers are not supported".into(),
            })
        }
        // gcc treats unknown extensions as linker inputs (e.g. `libfoo.a.1`).
        _ => inv.inputs.push(Input::Object(path)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, ArgError> {
        parse(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn table_is_sorted() {
        assert!(TABLE.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn compile_flags() {
        let inv = p(&[
            "-c", "-O2", "-Iinc", "-I", "b", "-DX=1", "-o", "x.o", "a.c", "-Wall", "-std=c99",
        ])
        .unwrap();
        assert_eq!(inv.mode, Mode::Compile);
        assert_eq!(inv.opt_level.as_deref(), Some("2"));
        assert_eq!(inv.output, Some(PathBuf::from("x.o")));
        assert_eq!(inv.inputs, vec![Input::Source("a.c".into())]);
        let fe: Vec<_> = inv.frontend.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(fe, ["-Iinc", "-I", "b", "-DX=1", "-Wall", "-std=c99"]);
    }

    #[test]
    fn link_inputs_keep_order() {
        let inv = p(&["a.o", "-lm", "b.a", "-L/x", "-Wl,--gc-sections,-z,now"]).unwrap();
        assert_eq!(
            inv.inputs,
            vec![
                Input::Object("a.o".into()),
                Input::Library("m".into()),
                Input::Object("b.a".into())
            ]
        );
        assert_eq!(inv.linker_args, ["--gc-sections", "-z", "now"]);
    }

    #[test]
    fn isa_flags_refused() {
        assert!(matches!(
            p(&["-march=native", "a.c"]),
            Err(ArgError::Unsupported { .. })
        ));
        assert!(matches!(
            p(&["-mavx2", "a.c"]),
            Err(ArgError::Unsupported { .. })
        ));
        assert!(p(&["-m64", "a.c"]).is_ok());
    }

    #[test]
    fn unknown_and_missing() {
        assert_eq!(
            p(&["--frobnicate"]).unwrap_err(),
            ArgError::Unknown("--frobnicate".into())
        );
        assert_eq!(p(&["-o"]).unwrap_err(), ArgError::MissingValue("-o".into()));
        assert!(matches!(p(&["x.S"]), Err(ArgError::Input { .. })));
    }

    #[test]
    fn response_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rsp");
        std::fs::write(&f, "-c \"a b.c\" -DX='1 2'\n").unwrap();
        let inv = p(&[&format!("@{}", f.display())]).unwrap();
        assert_eq!(inv.inputs, vec![Input::Source("a b.c".into())]);
        assert_eq!(inv.frontend, vec![OsString::from("-DX=1 2")]);
    }
}
