//! After the second link: the build id both variants carry, the metadata
//! (functions, sites and where each site keeps its values in each variant),
//! and the multi-ISA container.

use crate::layout::Plan;
use crate::LinkError;
use hc_metadata::isa::ENTRY_PREFIX;
use hc_metadata::meta::{BinaryMeta, FunctionMeta, Layout, SiteLocation, VariantMeta};
use hc_metadata::sites::SiteTable;
use hc_metadata::stackmap::{self, Location};
use hc_metadata::{container, meta, Isa};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A deterministic 128-bit FNV-1a over all variants' bytes.
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 16] {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    for p in parts {
        for &b in p.iter() {
            h ^= b as u128;
            h = h.wrapping_mul(PRIME);
        }
        h ^= p.len() as u128;
        h = h.wrapping_mul(PRIME);
    }
    h.to_le_bytes()
}

/// File offset of a symbol's bytes.
fn symbol_file_offset(data: &[u8], name: &str) -> Option<(usize, u64)> {
    let f = object::File::parse(data).ok()?;
    let sym = f.symbols().find(|s| s.name() == Ok(name))?;
    let sec = f.section_by_index(sym.section_index()?).ok()?;
    let (off, _) = sec.file_range()?;
    Some((
        (off + sym.address() - sec.address()) as usize,
        sym.address(),
    ))
}

/// Writes the same build id into every variant; returns it.
pub fn patch_build_id(exes: &mut BTreeMap<Isa, Vec<u8>>) -> Result<[u8; 16], LinkError> {
    let parts: Vec<&[u8]> = exes.values().map(|v| v.as_slice()).collect();
    let id = fingerprint(&parts);
    for (isa, data) in exes.iter_mut() {
        let (off, _) = symbol_file_offset(data, "__hc_build_id").ok_or_else(|| {
            LinkError::Internal(format!("__hc_build_id missing from the {isa} variant"))
        })?;
        data[off..off + 16].copy_from_slice(&id);
    }
    Ok(id)
}

fn tls_segment(data: &[u8]) -> Option<(u64, u64, u64)> {
    let elf = ElfFile64::<object::Endianness>::parse(data).ok()?;
    let e = elf.endian();
    elf.elf_program_headers()
        .iter()
        .find(|ph| ph.p_type(e) == object::elf::PT_TLS)
        .map(|ph| (ph.p_memsz(e), ph.p_filesz(e), ph.p_align(e)))
}

/// Builds the metadata from the plan, the site tables and the linked variants.
pub fn build_meta(
    plan: &Plan,
    sites: &BTreeMap<String, SiteTable>,
    exes: &BTreeMap<Isa, Vec<u8>>,
    build_id: [u8; 16],
) -> Result<BinaryMeta, LinkError> {
    let text: HashMap<(&str, &str), u64> = plan
        .text
        .iter()
        .map(|p| ((p.key.as_str(), p.section.as_str()), p.addr))
        .collect();
    let primary = object::File::parse(exes[&Isa::PRIMARY].as_slice())
        .map_err(|e| LinkError::Internal(e.to_string()))?;
    // A function with a redirected entry starts ENTRY_PREFIX bytes into
    // its section (hcc's poll::redirect_entry), alike in every variant.
    let symbols: HashSet<(&str, u64)> = primary
        .symbols()
        .filter_map(|s| Some((s.name().ok()?, s.address())))
        .collect();
    let mut functions = Vec::new();
    for (key, table) in sites {
        for f in &table.functions {
            if let Some(&start) = text.get(&(key.as_str(), f.section.as_str())) {
                let prefixed = start + ENTRY_PREFIX;
                let addr = if symbols.contains(&(f.symbol.as_str(), prefixed))
                    && !symbols.contains(&(f.symbol.as_str(), start))
                {
                    prefixed
                } else {
                    start
                };
                let resume = text
                    .get(&(key.as_str(), f.resume_section.as_str()))
                    .copied()
                    .unwrap_or(0);
                functions.push(FunctionMeta {
                    addr,
                    resume,
                    name: f.symbol.clone(),
                    file: table.source.clone(),
                    lost: f.lost.clone(),
                    record: f.record.clone(),
                    instrumented: f.instrumented,
                    reason: f.reason.clone(),
                    sites: f.sites.clone(),
                });
            }
        }
    }
    functions.sort_by_key(|f| f.addr);
    let main = primary
        .symbols()
        .find(|s| s.name() == Ok("main"))
        .map(|s| s.address())
        .ok_or(LinkError::NoMain)?;
    let (tls_memsz, tls_filesz, tls_align) = tls_segment(&exes[&Isa::PRIMARY]).unwrap_or((0, 0, 1));
    for (isa, data) in exes {
        if tls_segment(data).unwrap_or((0, 0, 1)) != (tls_memsz, tls_filesz, tls_align) {
            return Err(LinkError::Internal(format!(
                "the {isa} variant's TLS block differs from the primary's"
            )));
        }
    }
    // A resume copy's frames are its function's frames.
    let by_addr: HashMap<u64, &FunctionMeta> = functions
        .iter()
        .flat_map(|f| [(f.addr, f), (f.resume, f)])
        .filter(|(a, _)| *a != 0)
        .collect();
    let mut variants = Vec::new();
    for (&isa, data) in exes {
        let file =
            object::File::parse(data.as_slice()).map_err(|e| LinkError::Internal(e.to_string()))?;
        let mut out = Vec::new();
        if let Some(sm) = container::section(&file, ".llvm_stackmaps") {
            let funcs =
                stackmap::parse(sm).map_err(|e| LinkError::Internal(format!("{isa}: {e}")))?;
            // Functions --gc-sections dropped: lld resolves their stack
            // maps' relocations to 0 (inputs::unallocate_stack_maps).
            for f in funcs.into_iter().filter(|f| f.address != 0) {
                let meta = by_addr
                    .get(&f.address)
                    .filter(|m| m.instrumented)
                    .ok_or_else(|| {
                        LinkError::Internal(format!(
                            "{isa}: stack map for {:#x}, which is no instrumented function",
                            f.address
                        ))
                    })?;
                for r in f.records {
                    let site = meta.sites.get(r.id as usize).ok_or_else(|| {
                        LinkError::Internal(format!("{isa}: {} has no site {}", meta.name, r.id))
                    })?;
                    let ndeopt = match r.locations.get(2) {
                        Some(Location::Constant(n)) => *n as usize,
                        _ => {
                            return Err(LinkError::Internal(format!(
                                "{isa}: {} site {}: not a statepoint record",
                                meta.name, r.id
                            )))
                        }
                    };
                    // A poll passes its values either in a buffer (hcrt.h) or, when
                    // it has many, as deopt operands like a call (FORMATS §5).
                    let expected = if site.kind.is_poll() && ndeopt == 0 {
                        0
                    } else {
                        site.slots.len()
                    };
                    if ndeopt != expected || r.locations.len() < 3 + ndeopt {
                        return Err(LinkError::Internal(format!(
                            "{isa}: {} site {} carries {ndeopt} values, its table says {}",
                            meta.name, r.id, expected
                        )));
                    }
                    out.push(SiteLocation {
                        ret: r.address,
                        function: meta.addr,
                        index: r.id as u32,
                        locations: r.locations[3..3 + ndeopt].to_vec(),
                    });
                }
            }
        }
        out.sort_by_key(|s| s.ret);
        variants.push(VariantMeta { isa, sites: out });
    }
    Ok(BinaryMeta {
        build_id,
        layout: Layout {
            main,
            data_start: plan.data_start,
            data_end: plan.data_end,
            local_start: plan.local_start,
            local_end: plan.image_end,
            tls_memsz,
            tls_filesz,
            tls_align,
        },
        functions,
        variants,
    })
}

/// Removes the stack maps from every variant once `build_meta` has read
/// them: the metadata holds all the locations the rewriter needs, and no
/// code reads `.llvm_stackmaps` at run time (it is linked unloaded, see
/// layout::script). Without them each variant is ~40% smaller.
pub fn drop_stack_maps(exes: &mut BTreeMap<Isa, Vec<u8>>) -> Result<(), LinkError> {
    drop_sections(exes, |n| n == b".llvm_stackmaps")
}

/// Takes the debug information out of every variant (`-s`, `-S`).
pub fn drop_debug_info(exes: &mut BTreeMap<Isa, Vec<u8>>) -> Result<(), LinkError> {
    drop_sections(exes, container::is_debug_section)
}

fn drop_sections(
    exes: &mut BTreeMap<Isa, Vec<u8>>,
    drop: impl Fn(&[u8]) -> bool + Copy,
) -> Result<(), LinkError> {
    for (isa, data) in exes.iter_mut() {
        *data = container::remove_sections(data, drop)
            .map_err(|e| LinkError::Internal(format!("{isa}: {e}")))?;
    }
    Ok(())
}

/// The container: the primary variant, with the others and the metadata in
/// non-allocated sections.
pub fn container(exes: &BTreeMap<Isa, Vec<u8>>, meta: &BinaryMeta) -> Result<Vec<u8>, LinkError> {
    let names: Vec<(Isa, String)> = exes
        .keys()
        .filter(|i| **i != Isa::PRIMARY)
        .map(|i| (*i, meta::variant_section(*i)))
        .collect();
    // Both compress (FORMATS §3, §4): side by side.
    let (encoded, packed) = rayon::join(
        || meta.encode(),
        || -> Vec<Vec<u8>> {
            names
                .iter()
                .map(|(isa, _)| meta::pack_variant(&exes[isa], *isa))
                .collect()
        },
    );
    let mut sections: Vec<(&str, &[u8])> = vec![(meta::SECTION, &encoded)];
    for ((_, name), bytes) in names.iter().zip(&packed) {
        sections.push((name.as_str(), bytes.as_slice()));
    }
    container::add_sections(&exes[&Isa::PRIMARY], &sections)
        .map_err(|e| LinkError::Internal(e.to_string()))
}
