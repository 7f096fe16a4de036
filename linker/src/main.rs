//! `hld`: the multi-ISA linker hcc runs for link steps.

use hld::inputs::Item;
use hld::Options;
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
Usage: hld -o OUTPUT [options] inputs...

Links objects and archives built by hcc into one multi-ISA executable: every
ISA variant is linked statically against musl with ld.lld-22, every symbol at
the same address in all variants, with the metadata hcontainer needs.
hcc runs hld for you; call it directly only to link prebuilt hcc objects.

Inputs (in link order): FILE.o, FILE.a (archives of hcc objects), -lNAME
Options:
  -o FILE          output executable
  -L DIR           search DIR for -l libraries
  --ld-arg=ARG     pass ARG to every variant's ld.lld
  -nostartfiles    no crt1.o/crti.o/crtn.o
  -nodefaultlibs   no libc.a/libgcc.a
  -nostdlib        both of the above
  -u SYM, -e SYM   undefined symbol, entry point (as ld's)
  -s, -S           no debug information in any variant (--strip-all and
                   --strip-debug as ld args too; symbols stay, hcontainer
                   reads them)
  --keep-temps=DIR keep linker scripts, maps and variants in DIR
  -v               print the link commands and a summary
Environment: HCC_TIME=1 prints how long each step of the link took.
";

/// ld's stripping options, which hld carries out itself (`-s`).
const STRIP_ARGS: &[&str] = &["-s", "-S", "--strip-all", "--strip-debug"];

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut output = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let value = |it: &mut std::vec::IntoIter<String>, flag: &str| {
            it.next()
                .ok_or_else(|| format!("argument to '{flag}' is missing"))
        };
        match a.as_str() {
            "-o" => output = Some(PathBuf::from(value(&mut it, "-o")?)),
            "-L" => o.lib_dirs.push(PathBuf::from(value(&mut it, "-L")?)),
            "-l" => o.items.push(Item::Lib(value(&mut it, "-l")?)),
            "-v" => o.verbose = true,
            "-s" | "-S" => o.strip_debug = true,
            "-u" => o
                .ld_args
                .push(format!("--undefined={}", value(&mut it, "-u")?)),
            "-e" => o.ld_args.push(format!("--entry={}", value(&mut it, "-e")?)),
            "-nostartfiles" => o.nostartfiles = true,
            "-nodefaultlibs" => o.nodefaultlibs = true,
            "-nostdlib" => {
                o.nostartfiles = true;
                o.nodefaultlibs = true;
            }
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            _ if a.starts_with("-L") => o.lib_dirs.push(PathBuf::from(&a[2..])),
            _ if a.starts_with("-l") => o.items.push(Item::Lib(a[2..].to_string())),
            _ if a.starts_with("-o") => output = Some(PathBuf::from(&a[2..])),
            _ if a.starts_with("-u") => o.ld_args.push(format!("--undefined={}", &a[2..])),
            _ if a.starts_with("-e") => o.ld_args.push(format!("--entry={}", &a[2..])),
            _ if a.starts_with("--ld-arg=") => {
                let arg = &a["--ld-arg=".len()..];
                // Stripping lld's output would take the symbols hld reads.
                if STRIP_ARGS.contains(&arg) {
                    o.strip_debug = true;
                } else {
                    o.ld_args.push(arg.to_string());
                }
            }
            _ if a.starts_with("--keep-temps=") => {
                o.keep = Some(PathBuf::from(&a["--keep-temps=".len()..]))
            }
            _ if a.starts_with('-') => {
                return Err(format!("unknown argument '{a}' (see hld --help)"))
            }
            _ => o.items.push(Item::File(PathBuf::from(a))),
        }
    }
    o.output = output.unwrap_or_else(|| PathBuf::from("a.out"));
    if o.items.is_empty() {
        return Err("no input files".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hld: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match hld::link(&opts) {
        Ok(r) => {
            if opts.verbose {
                eprintln!(
                    "hld: {}: {} functions ({} instrumented), {} sites, {} ms",
                    opts.output.display(),
                    r.functions,
                    r.instrumented,
                    r.sites,
                    r.millis
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hld: error: {e}");
            ExitCode::FAILURE
        }
    }
}
