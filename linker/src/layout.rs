//! The aligned layout (DESIGN.md 3.5): every input section both variants
//! link gets one address in both, at the largest alignment and padded to
//! the larger size; sections only one variant has go after the aligned
//! ones; writable data that is per-variant goes to the arch-local region.
//!
//! ```text
//! 0x400000  ELF + program headers                       ┐ text segment (r-x)
//!           .init .fini, aligned .text, ISA-only .text   ┘
//! 64K       aligned .rodata, ISA-only .rodata,           ┐ rodata segment (r--)
//!           .eh_frame, __hc_polls, __hc_entries,         │
//!           __hc_tables (per variant)                    ┘
//! 64K       .tdata .tbss (aligned: same TLS offsets)     ┐ data segment (rw-)
//!           .init_array .fini_array                      │
//!           __hc_data_start: aligned .data, .bss          │ ← migrated byte for byte
//!           __hc_data_end                                 ┘
//! 64K       __hc_local_start: arch-local data and bss      ┐ local segment (rw-)
//!           (musl's per-process state, the runtime's own,  │ ← never restored
//!           ISA-only data) __hc_local_end                  ┘
//!           __hc_image_end
//! ```

use crate::mapfile::{InputSection, LinkMap};
use hc_metadata::isa::{ENTRY_SECTION, LOCAL_DATA_PREFIX, POLL_SECTION, TABLE_SECTION};
use hc_metadata::Isa;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

pub const BASE: u64 = 0x400000;
const SEGMENT_ALIGN: u64 = 0x10000;

/// musl objects whose data each variant keeps for itself (DESIGN.md 3.5 and
/// §6): the libc struct (auxv, TLS sizes, page size), hwcap, the vdso
/// pointers and the main thread's TLS/pthread area.
const ARCH_LOCAL: &[(&str, &str)] = &[
    ("libc.a(libc.lo)", ".bss.__libc"),
    ("libc.a(libc.lo)", ".bss.__hwcap"),
    ("libc.a(defsysinfo.lo)", ".bss.__sysinfo"),
    ("libc.a(__init_tls.lo)", ".bss.builtin_tls"),
    ("libc.a(__init_tls.lo)", ".bss.main_tls"),
    ("libc.a(clock_gettime.lo)", ".data.rel.local.vdso_func"),
    ("libc.a(sched_getcpu.lo)", ".data.rel.local.vdso_func"),
];

/// Objects of the in-process runtime: their data is arch-local.
pub const RUNTIME_OBJECTS: &[&str] = &["hcrt.o", "hcstub.o"];

/// Runtime data that is migrated all the same: the buffer polls write their
/// frame record into, which the rewriter reads from the dump, the main
/// thread's errno (its address is the same on every ISA), and the blocking
/// call a migration interrupted, which the destination makes again.
const SHARED_RUNTIME: &[(&str, &str)] = &[
    ("hcrt.o", ".bss.__hc_poll_record"),
    ("hcrt.o", ".bss.__hc_main_errno"),
    ("hcrt.o", ".bss.__hc_pending"),
];

/// The anchor of the TLS block: first in .tdata in every variant.
const TLS_ANCHOR: (&str, &str) = ("hcrt.o", ".tdata.__hc_tls_anchor");

/// A file as lld names it, normalized so both variants' names agree:
/// `dir/x.o` → `x.o`, `dir/libc.a(fputs.lo)` → `libc.a(fputs.lo)`.
pub fn file_key(file: &str) -> String {
    if file.starts_with('<') {
        return file.to_string();
    }
    match file.rfind('(') {
        Some(open) if file.ends_with(')') => {
            let archive = &file[..open];
            let base = archive.rsplit('/').next().unwrap_or(archive);
            format!("{base}{}", &file[open..])
        }
        _ => file.rsplit('/').next().unwrap_or(file).to_string(),
    }
}

/// lld's linker-script pattern for the file: `path` or `archive:member`.
fn file_pattern(file: &str) -> String {
    match file.rfind('(') {
        Some(open) if file.ends_with(')') => {
            format!("{}:{}", &file[..open], &file[open + 1..file.len() - 1])
        }
        _ => file.to_string(),
    }
}

/// Which part of the image an output section belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Class {
    Text,
    Rodata,
    Tdata,
    Tbss,
    Data,
    Bss,
    /// Whole per-variant sections (placed by lld as a unit): .init, .eh_frame, ...
    Whole,
    /// Linker-made data (.got): per variant, arch-local.
    Internal,
    NonAlloc,
}

fn class_of(output: &str, addr: u64) -> Option<Class> {
    Some(match output {
        ".text" => Class::Text,
        ".rodata" => Class::Rodata,
        ".tdata" => Class::Tdata,
        ".tbss" => Class::Tbss,
        ".data" | ".data.rel.ro" => Class::Data,
        ".bss" => Class::Bss,
        ".init" | ".fini" | ".eh_frame" | ".eh_frame_hdr" | ".llvm_stackmaps"
        | ".gcc_except_table" | ".init_array" | ".fini_array" | ".preinit_array" | POLL_SECTION
        | ENTRY_SECTION | TABLE_SECTION => Class::Whole,
        ".got" | ".got.plt" | ".relro_padding" => Class::Internal,
        _ if addr == 0 => Class::NonAlloc,
        _ => return None,
    })
}

/// One input section placed in every variant so that it, or the symbols it
/// defines, have the same address in all of them.
#[derive(Clone, Debug)]
pub struct Placed {
    pub key: String,
    pub section: String,
    /// In the primary variant (the others differ only when the same symbol
    /// sits at different offsets of their sections, as in assembly files).
    pub addr: u64,
    /// Per variant: the linker-script file pattern, the section name (names
    /// differ when one variant's code is assembly and the other's C) and the
    /// address.
    pub patterns: BTreeMap<Isa, (String, String, u64)>,
    /// Per variant: how lld would place the section right after the one
    /// before it in the script (`script` leaves out the `. = addr` then).
    pub extents: BTreeMap<Isa, Extent>,
}

/// An input section's size and alignment in one variant, and its place in
/// that variant's input order.
#[derive(Clone, Copy, Debug)]
pub struct Extent {
    pub size: u64,
    pub align: u64,
    /// Index in the first link's map: lld lists a file's sections in the
    /// order it reads them.
    pub seq: usize,
}

/// An input section one variant has alone, placed only there.
#[derive(Clone, Debug)]
pub struct Single {
    pub pattern: String,
    pub section: String,
    pub addr: Option<u64>,
}

/// The complete plan both linker scripts are written from.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub init: u64,
    pub fini: u64,
    pub text_start: u64,
    pub text: Vec<Placed>,
    pub text_only: BTreeMap<Isa, Vec<Single>>,
    pub rodata_start: u64,
    pub rodata: Vec<Placed>,
    pub rodata_only: BTreeMap<Isa, Vec<Single>>,
    pub whole_ro: u64,
    pub tls_start: u64,
    pub tdata: Vec<Placed>,
    pub tdata_only: BTreeMap<Isa, Vec<Single>>,
    pub tbss_start: u64,
    pub tbss: Vec<Placed>,
    pub tbss_only: BTreeMap<Isa, Vec<Single>>,
    pub tls_end: u64,
    /// Largest alignment of any TLS section in any variant: both PT_TLS
    /// segments get it, so the TLS blocks are laid out alike.
    pub tls_align: u64,
    pub arrays: u64,
    pub data_start: u64,
    pub data: Vec<Placed>,
    pub bss_start: u64,
    pub bss: Vec<Placed>,
    pub data_end: u64,
    pub local_start: u64,
    pub local_data: BTreeMap<Isa, Vec<Single>>,
    pub local_bss: BTreeMap<Isa, Vec<Single>>,
    pub image_end: u64,
    /// Paths of crti.o/crtn.o per variant (ordering of .init/.fini).
    pub crt: BTreeMap<Isa, (String, String)>,
}

fn align_up(v: u64, a: u64) -> u64 {
    let a = a.max(1);
    v.div_ceil(a) * a
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "the {isa} link produced output section '{section}', which hld does not know how to place"
    )]
    UnknownOutput { isa: Isa, section: String },
    #[error("input section {file}({section}) appears twice in the {isa} link; hld cannot give it one address")]
    Duplicate {
        isa: Isa,
        file: String,
        section: String,
    },
}

type Entry<'a> = &'a InputSection;
/// An input section across variants: its class, file key and section name.
type Id = (Class, String, String);

/// Computes the aligned layout from each variant's first-pass link map.
pub fn plan(maps: &BTreeMap<Isa, LinkMap>) -> Result<Plan, LayoutError> {
    // (class, key, section) → per-ISA entry; order of first appearance in the primary map.
    let mut order: Vec<Id> = Vec::new();
    let mut entries: HashMap<Id, BTreeMap<Isa, Entry>> = HashMap::new();
    let arch_local: BTreeSet<(String, String)> = ARCH_LOCAL
        .iter()
        .map(|(f, s)| (f.to_string(), s.to_string()))
        .collect();
    let mut plan = Plan::default();
    for (&isa, map) in maps {
        for out in &map.outputs {
            if class_of(&out.name, out.addr).is_none() {
                return Err(LayoutError::UnknownOutput {
                    isa,
                    section: out.name.clone(),
                });
            }
        }
        let mut seen = BTreeSet::new();
        for inp in &map.inputs {
            let Some(class) = class_of(&inp.output, inp.addr).or_else(|| class_of(&inp.output, 0))
            else {
                return Err(LayoutError::UnknownOutput {
                    isa,
                    section: format!("{} (input {}:{})", inp.output, inp.file, inp.section),
                });
            };
            if matches!(class, Class::NonAlloc | Class::Whole) {
                if inp.section == ".init" {
                    let key = file_key(&inp.file);
                    let e = plan.crt.entry(isa).or_default();
                    if key == "crti.o" {
                        e.0 = file_pattern(&inp.file);
                    } else if key == "crtn.o" {
                        e.1 = file_pattern(&inp.file);
                    }
                }
                continue;
            }
            let key = file_key(&inp.file);
            let id = (class, key.clone(), inp.section.clone());
            if !seen.insert(id.clone()) && !key.starts_with('<') {
                return Err(LayoutError::Duplicate {
                    isa,
                    file: inp.file.clone(),
                    section: inp.section.clone(),
                });
            }
            let slot = entries.entry(id.clone()).or_default();
            if slot.is_empty() {
                order.push(id);
            }
            slot.insert(isa, inp);
        }
    }
    // Empty code sections need no address; setting them aside lets the
    // pairing below see the sections that matter.
    let mut empties: BTreeMap<Isa, Vec<Single>> = BTreeMap::new();
    for id in order.iter().filter(|id| id.0 == Class::Text) {
        let per = entries.get_mut(id).expect("listed");
        per.retain(|isa, e| {
            if e.size == 0 {
                empties.entry(*isa).or_default().push(Single {
                    pattern: file_pattern(&e.file),
                    section: e.section.clone(),
                    addr: None,
                });
            }
            e.size > 0
        });
    }
    order.retain(|id| !entries[id].is_empty());
    // Code one variant has in assembly (`.text`) and the other in C
    // (`.text.name`) is the same function: pair the lone sections of one file
    // one to one, so function pointers to it stay valid across variants.
    let mut lone: BTreeMap<String, BTreeMap<Isa, Vec<Id>>> = BTreeMap::new();
    for id in order.iter().filter(|id| id.0 == Class::Text) {
        let per = &entries[id];
        if per.len() == 1 {
            let isa = *per.keys().next().expect("one entry");
            lone.entry(id.1.clone())
                .or_default()
                .entry(isa)
                .or_default()
                .push(id.clone());
        }
    }
    for by_isa in lone.values() {
        if by_isa.len() != maps.len() || by_isa.values().any(|v| v.len() != 1) {
            continue;
        }
        let ids: Vec<_> = by_isa.values().map(|v| v[0].clone()).collect();
        let keep = ids[0].clone();
        for other in &ids[1..] {
            let moved = entries.remove(other).expect("listed");
            entries.get_mut(&keep).expect("listed").extend(moved);
            order.retain(|x| x != other);
        }
    }
    // The TLS anchor goes first so the TLS block starts with it.
    if let Some(pos) = order
        .iter()
        .position(|(c, k, s)| *c == Class::Tdata && k == TLS_ANCHOR.0 && s == TLS_ANCHOR.1)
    {
        let a = order.remove(pos);
        order.insert(0, a);
    }
    let nisa = maps.len();
    let seq: BTreeMap<Isa, HashMap<(&str, &str), usize>> = maps
        .iter()
        .map(|(isa, m)| {
            let idx = m
                .inputs
                .iter()
                .enumerate()
                .map(|(k, i)| ((i.file.as_str(), i.section.as_str()), k))
                .collect();
            (*isa, idx)
        })
        .collect();
    let is_local = |class: Class, key: &str, section: &str, n: usize| -> bool {
        match class {
            Class::Internal => true,
            Class::Data | Class::Bss => {
                n < nisa
                    || (RUNTIME_OBJECTS.contains(&key) && !SHARED_RUNTIME.contains(&(key, section)))
                    || arch_local.contains(&(key.to_string(), section.to_string()))
                    || section.starts_with(LOCAL_DATA_PREFIX)
                    || key.starts_with('<')
            }
            _ => false,
        }
    };

    // Places the common entries of one class from `cursor`; ISA-only ones
    // after them, each variant on its own from the same start.
    let place = |class: Class,
                 cursor: &mut u64,
                 common: &mut Vec<Placed>,
                 only: &mut BTreeMap<Isa, Vec<Single>>| {
        // lld aligns an output section to its largest input alignment.
        let max_align = order
            .iter()
            .filter(|id| id.0 == class)
            .flat_map(|id| entries[id].values().map(|e| e.align))
            .max()
            .unwrap_or(1);
        *cursor = align_up(*cursor, max_align);
        for id in order.iter().filter(|id| id.0 == class) {
            let per = &entries[id];
            if is_local(class, &id.1, &id.2, per.len()) || per.len() < nisa {
                continue;
            }
            let addrs = shifted_addresses(per, *cursor);
            let end = per
                .iter()
                .map(|(i, e)| addrs[i] + e.size)
                .max()
                .unwrap_or(*cursor);
            *cursor = end;
            let primary = per.keys().next().copied().expect("non-empty");
            common.push(Placed {
                key: id.1.clone(),
                section: id.2.clone(),
                addr: addrs[&primary],
                patterns: per
                    .iter()
                    .map(|(i, e)| (*i, (file_pattern(&e.file), e.section.clone(), addrs[i])))
                    .collect(),
                extents: per
                    .iter()
                    .map(|(i, e)| {
                        let extent = Extent {
                            size: e.size,
                            align: e.align,
                            seq: seq[i][&(e.file.as_str(), e.section.as_str())],
                        };
                        (*i, extent)
                    })
                    .collect(),
            });
        }
        let start = *cursor;
        let mut end = start;
        for &isa in maps.keys() {
            let mut c = start;
            for id in order.iter().filter(|id| id.0 == class) {
                let per = &entries[id];
                if per.len() == nisa || is_local(class, &id.1, &id.2, per.len()) {
                    continue;
                }
                if let Some(e) = per.get(&isa) {
                    let addr = align_up(c, e.align);
                    c = addr + e.size;
                    only.entry(isa).or_default().push(Single {
                        pattern: file_pattern(&e.file),
                        section: id.2.clone(),
                        addr: Some(addr),
                    });
                }
            }
            end = end.max(c);
        }
        *cursor = end;
    };

    let whole_size = |names: &[&str]| -> u64 {
        maps.values()
            .map(|m| {
                m.outputs
                    .iter()
                    .filter(|o| names.contains(&o.name.as_str()))
                    .map(|o| align_up(o.size, 16) + o.align)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    };

    // Text segment.
    let mut cursor = BASE + 0x1000;
    plan.init = cursor;
    cursor += align_up(whole_size(&[".init"]), 16);
    plan.fini = cursor;
    cursor += align_up(whole_size(&[".fini"]), 16);
    cursor = align_up(cursor, 64);
    plan.text_start = cursor;
    let (mut text, mut text_only) = (Vec::new(), BTreeMap::new());
    place(Class::Text, &mut cursor, &mut text, &mut text_only);
    for (isa, list) in empties {
        text_only.entry(isa).or_default().extend(list);
    }
    plan.text = text;
    plan.text_only = text_only;

    // Read-only segment.
    cursor = align_up(cursor, SEGMENT_ALIGN);
    plan.rodata_start = cursor;
    let (mut ro, mut ro_only) = (Vec::new(), BTreeMap::new());
    place(Class::Rodata, &mut cursor, &mut ro, &mut ro_only);
    plan.rodata = ro;
    plan.rodata_only = ro_only;
    plan.whole_ro = align_up(cursor, 64);
    cursor = plan.whole_ro
        + whole_size(&[
            ".eh_frame",
            ".eh_frame_hdr",
            ".gcc_except_table",
            POLL_SECTION,
            ENTRY_SECTION,
            TABLE_SECTION,
        ]);

    // Data segment: TLS first.
    cursor = align_up(cursor + 0x1000, SEGMENT_ALIGN);
    plan.tls_start = cursor;
    let (mut td, mut td_only) = (Vec::new(), BTreeMap::new());
    place(Class::Tdata, &mut cursor, &mut td, &mut td_only);
    plan.tdata = td;
    plan.tdata_only = td_only;
    let tbss_align = maps
        .values()
        .flat_map(|m| {
            m.inputs
                .iter()
                .filter(|i| i.output == ".tbss")
                .map(|i| i.align)
        })
        .max()
        .unwrap_or(1);
    let tdata_end = cursor;
    plan.tls_align = maps
        .values()
        .flat_map(|m| {
            m.inputs
                .iter()
                .filter(|i| i.output == ".tbss" || i.output == ".tdata")
                .map(|i| i.align)
        })
        .max()
        .unwrap_or(1);
    cursor = align_up(cursor, tbss_align.max(plan.tls_align));
    plan.tbss_start = cursor;
    let (mut tb, mut tb_only) = (Vec::new(), BTreeMap::new());
    place(Class::Tbss, &mut cursor, &mut tb, &mut tb_only);
    plan.tbss = tb;
    plan.tbss_only = tb_only;
    plan.tls_end = cursor;
    // .tbss takes no room in the image: the arrays follow .tdata.
    cursor = align_up(tdata_end, 64);
    plan.arrays = cursor;
    cursor += whole_size(&[".preinit_array", ".init_array", ".fini_array"]) + 64;
    cursor = align_up(cursor, 0x1000);
    plan.data_start = cursor;
    let (mut data, mut unused) = (Vec::new(), BTreeMap::new());
    place(Class::Data, &mut cursor, &mut data, &mut unused);
    cursor = cursor.max(plan.data_start);
    plan.data = data;
    let mut bss = Vec::new();
    place(Class::Bss, &mut cursor, &mut bss, &mut unused);
    plan.bss_start = bss.first().map(|p| p.addr).unwrap_or(cursor);
    plan.bss = bss;
    plan.data_end = cursor;

    // Arch-local segment: each variant lays it out for itself.
    plan.local_start = align_up(cursor, SEGMENT_ALIGN);
    let mut local_size = 0u64;
    for &isa in maps.keys() {
        let mut size = 0;
        for id in &order {
            let per = &entries[id];
            let Some(e) = per.get(&isa) else { continue };
            if !is_local(id.0, &id.1, &id.2, per.len()) {
                continue;
            }
            size = align_up(size, e.align) + e.size;
            let single = Single {
                pattern: file_pattern(&e.file),
                section: id.2.clone(),
                addr: None,
            };
            let list = if matches!(id.0, Class::Bss) {
                &mut plan.local_bss
            } else {
                &mut plan.local_data
            };
            if !id.1.starts_with('<') {
                list.entry(isa).or_default().push(single);
            }
        }
        local_size = local_size.max(size);
    }
    plan.image_end = align_up(plan.local_start + local_size + 0x1000, SEGMENT_ALIGN);
    Ok(plan)
}

/// Addresses for one input section in every variant, from `cursor` on: the
/// same address when its symbols sit at the same offsets (always, for C);
/// otherwise shifted so the symbols coincide (assembly with different
/// prologues), as long as every variant's alignment allows it.
fn shifted_addresses(per: &BTreeMap<Isa, Entry>, cursor: u64) -> BTreeMap<Isa, u64> {
    let align = per.values().map(|e| e.align).max().unwrap_or(1).max(1);
    let plain = || per.keys().map(|i| (*i, align_up(cursor, align))).collect();
    // Offsets of the first symbol every variant defines here.
    let first = per.values().next().expect("non-empty");
    let Some(name) = first
        .symbols
        .iter()
        .map(|s| &s.0)
        .find(|n| per.values().all(|e| e.symbols.iter().any(|s| &s.0 == *n)))
    else {
        return plain();
    };
    let off: BTreeMap<Isa, u64> = per
        .iter()
        .map(|(i, e)| {
            (
                *i,
                e.symbols
                    .iter()
                    .find(|s| &s.0 == name)
                    .map(|s| s.1 - e.addr)
                    .unwrap_or(0),
            )
        })
        .collect();
    if off
        .values()
        .all(|o| *o == off[per.keys().next().expect("non-empty")])
    {
        return plain();
    }
    // Find the symbol address S with S - off[i] aligned for every variant.
    let max_off = *off.values().max().expect("non-empty");
    let start = cursor + max_off;
    for s in start..start + align * 2 {
        if per
            .iter()
            .all(|(i, e)| (s - off[i]).is_multiple_of(e.align.max(1)))
        {
            return off.iter().map(|(i, o)| (*i, s - o)).collect();
        }
    }
    plain()
}

/// Sections of one file that follow each other in the variant's input
/// order and need no padding between them: one input section description
/// takes them all, in that order.
struct Run<'a> {
    pattern: &'a str,
    sections: Vec<&'a str>,
    addr: u64,
    end: u64,
    seq: usize,
}

/// The variant's placed sections as runs: lld scans every input section
/// for each description of a script, so one description per section made
/// its "assign sections" step quadratic (Lua: 4025 descriptions, 366 ms of
/// a 486 ms link). A section joins the run before it when it is from the
/// same file, later in that file, and at the address lld would give it
/// there anyway; `check` still verifies every address after the link.
fn runs(list: &[Placed], isa: Isa) -> Vec<Run<'_>> {
    let mut out: Vec<Run> = Vec::new();
    for p in list {
        let (Some((pattern, section, addr)), Some(x)) = (p.patterns.get(&isa), p.extents.get(&isa))
        else {
            continue;
        };
        if let Some(run) = out.last_mut() {
            if run.pattern == pattern
                && !pattern.starts_with('<')
                && x.seq > run.seq
                && align_up(run.end, x.align) == *addr
            {
                run.sections.push(section);
                run.end = addr + x.size;
                run.seq = x.seq;
                continue;
            }
        }
        out.push(Run {
            pattern,
            sections: vec![section],
            addr: *addr,
            end: addr + x.size,
            seq: x.seq,
        });
    }
    out
}

/// Writes the linker script of one variant.
pub fn script(plan: &Plan, isa: Isa) -> String {
    let mut s = String::new();
    let w = &mut s;
    let empty = Vec::new();
    let (crti, crtn) = plan.crt.get(&isa).cloned().unwrap_or_default();
    let _ = writeln!(
        w,
        "/* Generated by hld for the {isa} variant: every aligned input section at"
    );
    let _ = writeln!(w, "   the address it has in every variant. */");
    let _ = writeln!(w, "ENTRY(_start)");
    let _ = writeln!(w, "PHDRS {{");
    let _ = writeln!(w, "  text PT_LOAD FILEHDR PHDRS FLAGS(5);");
    let _ = writeln!(w, "  rodata PT_LOAD FLAGS(4);");
    let _ = writeln!(w, "  data PT_LOAD FLAGS(6);");
    let _ = writeln!(w, "  local PT_LOAD FLAGS(6);");
    let _ = writeln!(w, "  tls PT_TLS;");
    let _ = writeln!(w, "  stack PT_GNU_STACK FLAGS(6);");
    let _ = writeln!(w, "}}");
    let _ = writeln!(w, "SECTIONS {{");
    let _ = writeln!(w, "  __hc_image_start = {BASE:#x};");
    let _ = writeln!(w, "  . = {BASE:#x} + SIZEOF_HEADERS;");
    for (name, addr) in [(".init", plan.init), (".fini", plan.fini)] {
        let mut body = String::new();
        if !crti.is_empty() {
            let _ = write!(body, "KEEP({crti}({name})) ");
        }
        let excl = [&crti, &crtn]
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if excl.is_empty() {
            let _ = write!(body, "KEEP(*({name})) ");
        } else {
            let _ = write!(body, "KEEP(*(EXCLUDE_FILE({excl}) {name})) ");
        }
        if !crtn.is_empty() {
            let _ = write!(body, "KEEP({crtn}({name}))");
        }
        let _ = writeln!(w, "  {name} {addr:#x} : {{ {body} }} :text");
    }
    let placed = |w: &mut String, list: &[Placed]| {
        for run in runs(list, isa) {
            let _ = writeln!(
                w,
                "    . = {:#x}; KEEP({}({}))",
                run.addr,
                run.pattern,
                run.sections.join(" ")
            );
        }
    };
    let singles = |w: &mut String, list: &[Single]| {
        for p in list {
            match p.addr {
                Some(a) => {
                    let _ = writeln!(w, "    . = {a:#x}; KEEP({}({}))", p.pattern, p.section);
                }
                None => {
                    let _ = writeln!(w, "    KEEP({}({}))", p.pattern, p.section);
                }
            }
        }
    };
    let _ = writeln!(w, "  .text {:#x} : {{", plan.text_start);
    placed(w, &plan.text);
    singles(w, plan.text_only.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "  }} :text");
    let _ = writeln!(w, "  .rodata {:#x} : {{", plan.rodata_start);
    placed(w, &plan.rodata);
    singles(w, plan.rodata_only.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "  }} :rodata");
    let _ = writeln!(
        w,
        "  .eh_frame {:#x} : {{ KEEP(*(.eh_frame)) }} :rodata",
        plan.whole_ro
    );
    let _ = writeln!(
        w,
        "  .gcc_except_table : {{ *(.gcc_except_table .gcc_except_table.*) }} :rodata"
    );
    // Where each poll's no-op and slow path are (FORMATS §5 "Polls"). Not
    // KEEP: each function's entries are linked to its section
    // (SHF_LINK_ORDER), so --gc-sections keeps them with the function, as
    // in pass 1.
    let _ = writeln!(w, "  {POLL_SECTION} : {{ *({POLL_SECTION}) }} :rodata");
    let _ = writeln!(w, "  {ENTRY_SECTION} : {{ *({ENTRY_SECTION}) }} :rodata");
    let _ = writeln!(w, "  {TABLE_SECTION} : {{ *({TABLE_SECTION}) }} :rodata");
    let _ = writeln!(
        w,
        "  .tdata {:#x} : ALIGN({}) {{",
        plan.tls_start, plan.tls_align
    );
    placed(w, &plan.tdata);
    singles(w, plan.tdata_only.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "  }} :data :tls");
    let _ = writeln!(
        w,
        "  .tbss {:#x} : ALIGN({}) {{",
        plan.tbss_start, plan.tls_align
    );
    placed(w, &plan.tbss);
    singles(w, plan.tbss_only.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "    . = {:#x};", plan.tls_end);
    let _ = writeln!(w, "  }} :data :tls");
    let _ = writeln!(
        w,
        "  .preinit_array {:#x} : {{ KEEP(*(.preinit_array)) }} :data",
        plan.arrays
    );
    let _ = writeln!(
        w,
        "  .init_array : {{ KEEP(*(SORT_BY_INIT_PRIORITY(.init_array.*) SORT_BY_INIT_PRIORITY(.ctors.*))) KEEP(*(.init_array .ctors)) }} :data"
    );
    let _ = writeln!(
        w,
        "  .fini_array : {{ KEEP(*(SORT_BY_INIT_PRIORITY(.fini_array.*) SORT_BY_INIT_PRIORITY(.dtors.*))) KEEP(*(.fini_array .dtors)) }} :data"
    );
    let _ = writeln!(w, "  .data {:#x} : {{", plan.data_start);
    let _ = writeln!(w, "    __hc_data_start = .;");
    placed(w, &plan.data);
    let _ = writeln!(w, "  }} :data");
    let _ = writeln!(w, "  .bss {:#x} : {{", plan.bss_start.max(plan.data_start));
    placed(w, &plan.bss);
    let _ = writeln!(w, "    . = {:#x};", plan.data_end.max(plan.data_start));
    let _ = writeln!(w, "    __hc_data_end = .;");
    let _ = writeln!(w, "  }} :data");
    let _ = writeln!(w, "  .hc_local {:#x} : {{", plan.local_start);
    let _ = writeln!(w, "    __hc_local_start = .;");
    singles(w, plan.local_data.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "    *(.got) *(.got.plt)");
    let _ = writeln!(w, "  }} :local");
    let _ = writeln!(w, "  .hc_local_bss : {{");
    singles(w, plan.local_bss.get(&isa).unwrap_or(&empty));
    let _ = writeln!(w, "    *(COMMON)");
    let _ = writeln!(w, "    __hc_local_end = .;");
    let _ = writeln!(w, "  }} :local");
    let _ = writeln!(w, "  __hc_image_end = {:#x};", plan.image_end);
    // Not loaded: hld reads the stack maps into the metadata and then drops
    // them (package::drop_stack_maps); the running program never reads them.
    // Not KEEP either: a kept section's relocations would keep every
    // function alive under --gc-sections (inputs::unallocate_stack_maps).
    let _ = writeln!(w, "  .llvm_stackmaps 0 (INFO) : {{ *(.llvm_stackmaps) }}");
    let _ = writeln!(w, "  /DISCARD/ : {{ *(.hcontainer.*) }}");
    let _ = writeln!(w, "}}");
    s
}

/// Checks the second-pass map against the plan: every aligned section where
/// it was meant to go. Returns the first difference.
pub fn check(plan: &Plan, isa: Isa, map: &LinkMap) -> Result<(), String> {
    let mut want: HashMap<(String, String), u64> = HashMap::new();
    for list in [
        &plan.text,
        &plan.rodata,
        &plan.tdata,
        &plan.tbss,
        &plan.data,
        &plan.bss,
    ] {
        for p in list {
            if let Some((_, section, addr)) = p.patterns.get(&isa) {
                want.insert((p.key.clone(), section.clone()), *addr);
            }
        }
    }
    let mut found = 0;
    for inp in &map.inputs {
        let key = (file_key(&inp.file), inp.section.clone());
        if let Some(&addr) = want.get(&key) {
            found += 1;
            if addr != inp.addr {
                return Err(format!(
                    "{}({}) is at {:#x} in the {isa} variant, planned {:#x}",
                    inp.file, inp.section, inp.addr, addr
                ));
            }
        }
    }
    if found != want.len() {
        return Err(format!(
            "{} of {} aligned sections were not linked into the {isa} variant",
            want.len() - found,
            want.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(
        pattern: &str,
        section: &str,
        addr: u64,
        size: u64,
        align: u64,
        seq: usize,
    ) -> Placed {
        let isa = Isa::PRIMARY;
        Placed {
            key: pattern.to_string(),
            section: section.to_string(),
            addr,
            patterns: [(isa, (pattern.to_string(), section.to_string(), addr))].into(),
            extents: [(isa, Extent { size, align, seq })].into(),
        }
    }

    #[test]
    fn one_description_takes_a_files_sections_lld_would_place_there_anyway() {
        let list = [
            placed("a.o", ".text.f", 0x1000, 0x30, 16, 0),
            // Where lld puts it after f (aligned up from 0x1030): joins.
            placed("a.o", ".text.g", 0x1030, 0x0c, 16, 1),
            // Padding after g (0x103c -> 0x1040 is alignment, 0x1050 is not).
            placed("a.o", ".text.h", 0x1050, 0x10, 16, 2),
            // Another file.
            placed("b.o", ".text.i", 0x1060, 0x10, 16, 7),
            // Earlier in b.o's input order than i: lld would put it first.
            placed("b.o", ".text.j", 0x1070, 0x10, 16, 6),
            placed("b.o", ".text.k", 0x1080, 0x10, 16, 8),
        ];
        let got: Vec<(&str, Vec<&str>, u64)> = runs(&list, Isa::PRIMARY)
            .into_iter()
            .map(|r| (r.pattern, r.sections, r.addr))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.o", vec![".text.f", ".text.g"], 0x1000),
                ("a.o", vec![".text.h"], 0x1050),
                ("b.o", vec![".text.i"], 0x1060),
                ("b.o", vec![".text.j", ".text.k"], 0x1070),
            ]
        );
        let s = Plan {
            text: list.to_vec(),
            ..Plan::default()
        };
        let script = script(&s, Isa::PRIMARY);
        assert!(
            script.contains(". = 0x1000; KEEP(a.o(.text.f .text.g))"),
            "{script}"
        );
        assert!(
            script.contains(". = 0x1070; KEEP(b.o(.text.j .text.k))"),
            "{script}"
        );
    }
}
