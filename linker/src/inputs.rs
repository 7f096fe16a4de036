//! Link inputs: hcc objects and archives of them, unpacked into one set of
//! files per ISA with names that agree across variants, plus the runtime and
//! musl's start files and libraries.

use crate::LinkError;
use hc_metadata::container;
use hc_metadata::sites::{SiteTable, SECTION as SITES};
use hc_metadata::Isa;
use object::read::archive::ArchiveFile;
use object::{Object, ObjectKind, ObjectSymbol};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One item of the user's link line, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    File(PathBuf),
    Lib(String),
}

/// musl keeps these in libc.a and ships empty archives for compatibility.
const MUSL_BUILTIN_LIBS: &[&str] = &[
    "c", "crypt", "dl", "m", "pthread", "resolv", "rt", "util", "xnet",
];

/// The runtime objects hld links into every program, per ISA.
pub fn runtime_objects(isa: Isa) -> [(&'static str, &'static [u8]); 2] {
    match isa {
        Isa::X86_64 => [
            (
                "hcrt.o",
                include_bytes!(concat!(env!("OUT_DIR"), "/hcrt-x86_64.o")),
            ),
            (
                "hcstub.o",
                include_bytes!(concat!(env!("OUT_DIR"), "/hcstub-x86_64.o")),
            ),
        ],
        Isa::Aarch64 => [
            (
                "hcrt.o",
                include_bytes!(concat!(env!("OUT_DIR"), "/hcrt-aarch64.o")),
            ),
            (
                "hcstub.o",
                include_bytes!(concat!(env!("OUT_DIR"), "/hcstub-aarch64.o")),
            ),
        ],
    }
}

/// Inputs ready for lld.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Per ISA: the user's part of the link line (objects and archives), in order.
    pub files: BTreeMap<Isa, Vec<PathBuf>>,
    /// Per ISA: the runtime objects.
    pub runtime: BTreeMap<Isa, Vec<PathBuf>>,
    /// Per ISA: musl's libc.a with unique member names.
    pub libc: BTreeMap<Isa, PathBuf>,
    /// Site tables by the file key lld's map will show (see layout::file_key).
    pub sites: BTreeMap<String, SiteTable>,
    /// Functions of `ON_DEMAND_WRAPS` and `ON_DEMAND_REQUIRES` the user's
    /// objects call.
    pub referenced: BTreeSet<String>,
}

/// Wrapped only in programs whose objects call one of the group (the
/// whole group then): the runtime's wrappers call musl's function weakly,
/// which would bring more of musl into every program (getdelim: its full
/// malloc, where a program that never frees gets musl's bump allocator).
pub const ON_DEMAND_WRAPS: &[&[&str]] = &[&["getline", "getdelim"]];

/// (runtime entry hcc redirects calls to, musl function it makes the call
/// with): a program that calls the entry links the function, which the
/// runtime references only weakly (`instrument/scanf.rs`).
pub const ON_DEMAND_REQUIRES: &[(&str, &str)] =
    &[("__hcw_fscanf", "vfscanf"), ("__hcw_vfscanf", "vfscanf")];

/// The on-demand wrapped functions `file` leaves undefined.
fn on_demand_references(file: &object::File) -> BTreeSet<String> {
    file.symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok())
        .filter(|n| {
            ON_DEMAND_WRAPS.iter().any(|g| g.contains(n))
                || ON_DEMAND_REQUIRES.iter().any(|(entry, _)| entry == n)
        })
        .map(str::to_string)
        .collect()
}

fn write(path: &Path, data: &[u8]) -> Result<(), LinkError> {
    std::fs::write(path, data).map_err(|e| LinkError::Io(format!("{}: {e}", path.display())))
}

/// Splits an hcc object into its per-ISA objects and its site table.
/// An hcc object's per-ISA objects, its site table and the on-demand
/// wrapped functions it calls.
type Split = (BTreeMap<Isa, Vec<u8>>, SiteTable, BTreeSet<String>);

fn split_object(what: &str, data: &[u8]) -> Result<Split, LinkError> {
    let not_hcc = |why: &str| LinkError::NotHcc {
        file: what.to_string(),
        why: why.to_string(),
    };
    let file =
        object::File::parse(data).map_err(|e| not_hcc(&format!("not an ELF object ({e})")))?;
    if file.kind() != ObjectKind::Relocatable {
        return Err(not_hcc("not a relocatable object"));
    }
    let sites = container::section(&file, SITES)
        .ok_or_else(|| not_hcc("it has no .hcontainer.sites section"))?;
    let table = SiteTable::decode(sites).map_err(|e| LinkError::Corrupt {
        file: what.to_string(),
        why: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for isa in Isa::ALL {
        if isa == Isa::PRIMARY {
            let stripped =
                container::strip_container_sections(data).map_err(|e| LinkError::Corrupt {
                    file: what.to_string(),
                    why: e.to_string(),
                })?;
            out.insert(isa, stripped);
        } else {
            let obj = container::section(&file, &container::object_section(isa))
                .ok_or_else(|| not_hcc(&format!("it has no {isa} variant")))?;
            out.insert(isa, obj.to_vec());
        }
    }
    for obj in out.values_mut() {
        unallocate_stack_maps(obj).map_err(|e| LinkError::Corrupt {
            file: what.to_string(),
            why: e.to_string(),
        })?;
    }
    Ok((out, table, on_demand_references(&file)))
}

/// Clears SHF_ALLOC on the object's `.llvm_stackmaps`. hld reads the stack
/// maps at link time only, and lld neither collects nor follows a
/// non-allocated section: with `--gc-sections` the stack maps then keep no
/// function alive (every function of the file has records there), and the
/// records of functions it drops point at address 0.
fn unallocate_stack_maps(obj: &mut [u8]) -> object::Result<()> {
    use object::read::elf::{FileHeader, SectionHeader};
    let e = object::LittleEndian;
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&*obj)?;
    let sections = header.sections(e, &*obj)?;
    let Some((index, sh)) = sections
        .enumerate()
        .find(|(_, sh)| sections.section_name(e, sh) == Ok(b".llvm_stackmaps".as_slice()))
    else {
        return Ok(());
    };
    let flags = sh.sh_flags(e) & !u64::from(object::elf::SHF_ALLOC);
    // sh_flags is the third field of an Elf64_Shdr, 8 bytes in.
    let at = header.e_shoff(e) as usize + index.0 * usize::from(header.e_shentsize(e)) + 8;
    obj[at..at + 8].copy_from_slice(&flags.to_le_bytes());
    Ok(())
}

/// A copy of a system archive in which members that share a name (musl's
/// libc.a has two `free.lo`, `realloc.lo` and `clone.lo`) get unique names,
/// so each can be named in a linker script. Names are patched in place in
/// the member headers; the symbol index refers to members by offset and
/// stays valid.
pub fn unique_member_names(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut seen: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    let mut pos = 8;
    while pos + 60 <= out.len() {
        let size: usize = std::str::from_utf8(&out[pos + 48..pos + 58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let field = out[pos..pos + 16].to_vec();
        let name_end = field.iter().position(|&c| c == b'/').unwrap_or(16);
        // Special members ("/", "//") and long names ("/123") are left alone.
        if name_end > 0 {
            let name = field[..name_end].to_vec();
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                let (stem, ext) = match name.iter().rposition(|&c| c == b'.') {
                    Some(d) => (&name[..d], &name[d..]),
                    None => (&name[..], &b""[..]),
                };
                let mut new = stem.to_vec();
                new.extend_from_slice(format!("~{n}").as_bytes());
                new.extend_from_slice(ext);
                new.push(b'/');
                if new.len() <= 16 {
                    new.resize(16, b' ');
                    out[pos..pos + 16].copy_from_slice(&new);
                }
            }
        }
        pos += 60 + size + (size & 1);
    }
    out
}

/// `-lNAME` is `libNAME.a` in the first directory that has it; `-l:FILE`
/// (GNU ld's form, mujs's Makefile links `-l:libmujs.a`) is FILE itself.
fn find_library(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let file = match name.strip_prefix(':') {
        Some(exact) => exact.to_string(),
        None => format!("lib{name}.a"),
    };
    dirs.iter().map(|d| d.join(&file)).find(|p| p.exists())
}

/// Unpacks the user's inputs and the runtime into `tmp/<isa>/`.
pub fn prepare(items: &[Item], lib_dirs: &[PathBuf], tmp: &Path) -> Result<Prepared, LinkError> {
    let mut p = Prepared::default();
    for isa in Isa::ALL {
        let dir = tmp.join(isa.name());
        std::fs::create_dir_all(&dir).map_err(|e| LinkError::Io(e.to_string()))?;
        for (name, bytes) in runtime_objects(isa) {
            let path = dir.join(name);
            write(&path, bytes)?;
            p.runtime.entry(isa).or_default().push(path);
        }
        p.files.insert(isa, Vec::new());
        let libc = PathBuf::from(isa.musl_lib_dir()).join("libc.a");
        let data = std::fs::read(&libc).map_err(|e| {
            LinkError::Io(format!("{}: {e} (run scripts/setup.sh)", libc.display()))
        })?;
        let path = dir.join("libc.a");
        write(&path, &unique_member_names(&data))?;
        p.libc.insert(isa, path);
    }
    for (n, item) in items.iter().enumerate() {
        let path = match item {
            Item::File(f) => f.clone(),
            // The -L directories first, as a linker searches them before
            // the system's; musl's own libraries are all in libc.a.
            Item::Lib(l) => match find_library(l, lib_dirs) {
                Some(p) => p,
                None if MUSL_BUILTIN_LIBS.contains(&l.as_str()) => continue,
                None => {
                    return Err(LinkError::LibraryNotFound {
                        name: l.clone(),
                        dirs: lib_dirs.to_vec(),
                    })
                }
            },
        };
        let data =
            std::fs::read(&path).map_err(|e| LinkError::Io(format!("{}: {e}", path.display())))?;
        if data.starts_with(b"!<arch>\n") {
            unpack_archive(&mut p, n, &path, &data, tmp)?;
        } else {
            let (objs, table, calls) = split_object(&path.display().to_string(), &data)?;
            p.referenced.extend(calls);
            let name = format!("in{n}.o");
            for (isa, bytes) in objs {
                let out = tmp.join(isa.name()).join(&name);
                write(&out, &bytes)?;
                p.files.get_mut(&isa).expect("every ISA").push(out);
            }
            p.sites.insert(name, table);
        }
    }
    Ok(p)
}

fn unpack_archive(
    p: &mut Prepared,
    n: usize,
    path: &Path,
    data: &[u8],
    tmp: &Path,
) -> Result<(), LinkError> {
    let what = path.display().to_string();
    let ar = ArchiveFile::parse(data).map_err(|e| LinkError::Corrupt {
        file: what.clone(),
        why: e.to_string(),
    })?;
    let archive_name = format!("lib{n}.a");
    let mut members: BTreeMap<Isa, Vec<PathBuf>> = BTreeMap::new();
    for (k, member) in ar.members().enumerate() {
        let member = member.map_err(|e| LinkError::Corrupt {
            file: what.clone(),
            why: e.to_string(),
        })?;
        let mname = String::from_utf8_lossy(member.name()).replace('/', "_");
        let body = member.data(data).map_err(|e| LinkError::Corrupt {
            file: what.clone(),
            why: e.to_string(),
        })?;
        let (objs, table, calls) = split_object(&format!("{what}({mname})"), body)?;
        // Any member's: whether lld takes it is decided later.
        p.referenced.extend(calls);
        // Unique member names: archives may hold two members of one name.
        let unique = format!("m{k}_{mname}");
        for (isa, bytes) in objs {
            let dir = tmp.join(isa.name()).join(format!("lib{n}"));
            std::fs::create_dir_all(&dir).map_err(|e| LinkError::Io(e.to_string()))?;
            let out = dir.join(&unique);
            write(&out, &bytes)?;
            members.entry(isa).or_default().push(out);
        }
        p.sites.insert(format!("{archive_name}({unique})"), table);
    }
    for (isa, list) in members {
        let out = tmp.join(isa.name()).join(&archive_name);
        let status = Command::new("llvm-ar-22")
            .arg("rcsD")
            .arg(&out)
            .args(&list)
            .status()
            .map_err(|e| LinkError::Tool(format!("llvm-ar-22: {e} (run scripts/setup.sh)")))?;
        if !status.success() {
            return Err(LinkError::Tool(format!("llvm-ar-22 failed on {what}")));
        }
        p.files.get_mut(&isa).expect("every ISA").push(out);
    }
    Ok(())
}
