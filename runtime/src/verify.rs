//! `hcontainer verify`: every variant agrees on every address that can be
//! stored in migrated memory, and the metadata agrees with the variants.

use crate::binary::{self, Binary};
use hc_metadata::Isa;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Object, ObjectSymbol};

/// Checks a binary; returns what was checked, or the first mismatch.
pub fn verify(bin: &Binary) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    let meta = &bin.meta;
    let isas = bin.isas();
    for isa in Isa::ALL {
        if !isas.contains(&isa) {
            return Err(format!("the {isa} variant is missing"));
        }
    }
    let exes: Vec<(Isa, &[u8])> = isas
        .iter()
        .map(|&i| bin.variant(i).map(|e| (i, e)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    // Build id stamped into every variant.
    for (isa, exe) in &exes {
        let f = object::File::parse(*exe).map_err(|e| format!("{isa} variant: {e}"))?;
        let sym = f
            .symbols()
            .find(|s| s.name() == Ok("__hc_build_id"))
            .ok_or_else(|| format!("{isa} variant has no __hc_build_id"))?;
        let bytes = read_at(&f, sym.address(), 16)
            .ok_or_else(|| format!("{isa}: cannot read __hc_build_id"))?;
        if bytes != meta.build_id {
            return Err(format!(
                "{isa} variant's build id differs from the metadata's"
            ));
        }
        let main = f
            .symbols()
            .find(|s| s.name() == Ok("main"))
            .map(|s| s.address());
        if main != Some(meta.layout.main) {
            return Err(format!(
                "main is at {main:x?} in the {isa} variant, the metadata says {:#x}",
                meta.layout.main
            ));
        }
        let elf = ElfFile64::<object::Endianness>::parse(*exe).map_err(|e| e.to_string())?;
        let e = elf.endian();
        let tls = elf
            .elf_program_headers()
            .iter()
            .find(|p| p.p_type(e) == object::elf::PT_TLS)
            .map(|p| (p.p_memsz(e), p.p_filesz(e), p.p_align(e)))
            .unwrap_or((0, 0, 1));
        if tls
            != (
                meta.layout.tls_memsz,
                meta.layout.tls_filesz,
                meta.layout.tls_align,
            )
        {
            return Err(format!(
                "the {isa} variant's TLS block {tls:?} differs from the metadata's"
            ));
        }
    }
    done.push(format!(
        "build id, main and TLS layout agree in {} variants",
        exes.len()
    ));

    // Every symbol outside the arch-local region at one address in all variants.
    let (primary_isa, primary) = exes[0];
    let psyms = binary::symbols(primary)?;
    let mut compared = 0;
    for &(isa, exe) in &exes[1..] {
        let syms = binary::symbols(exe)?;
        for (name, paddrs) in &psyms {
            let Some(addrs) = syms.get(name) else {
                continue;
            };
            let in_image = |a: &u64| *a >= 0x400000 && *a < meta.layout.local_start;
            let pa: Vec<u64> = paddrs.iter().copied().filter(in_image).collect();
            let oa: Vec<u64> = addrs.iter().copied().filter(in_image).collect();
            if pa.is_empty() && oa.is_empty() {
                continue;
            }
            if pa.len() == oa.len() {
                compared += 1;
                if pa != oa {
                    return Err(format!(
                        "symbol '{name}' is at {} in the {primary_isa} variant but at {} in the {isa} variant",
                        hexes(&pa),
                        hexes(&oa)
                    ));
                }
            }
        }
    }
    done.push(format!(
        "{compared} symbols at the same address in every variant"
    ));

    // Metadata against the variants.
    let mut nsites = 0;
    for f in &meta.functions {
        for (isa, exe) in &exes {
            let syms = binary::symbols(exe)?;
            if !syms.get(&f.name).is_some_and(|a| a.contains(&f.addr)) {
                return Err(format!(
                    "function {} ({:#x}) is not a symbol of the {isa} variant",
                    f.name, f.addr
                ));
            }
        }
    }
    for v in &meta.variants {
        for s in &v.sites {
            let f = meta.function(s.function).ok_or_else(|| {
                format!(
                    "{}: site at {:#x} names unknown function {:#x}",
                    v.isa, s.ret, s.function
                )
            })?;
            let site = f
                .sites
                .get(s.index as usize)
                .ok_or_else(|| format!("{}: {} has no site {}", v.isa, f.name, s.index))?;
            // A poll's values are in a buffer (no locations) or located
            // like a call's (FORMATS §5).
            let expected = if site.kind.is_poll() && s.locations.is_empty() {
                0
            } else {
                site.slots.len()
            };
            if expected != s.locations.len()
                || site.slots.iter().any(|&i| i as usize >= f.record.len())
            {
                return Err(format!(
                    "{}: {} site {} has {} locations for {} values (or a value outside its record)",
                    v.isa,
                    f.name,
                    s.index,
                    s.locations.len(),
                    expected
                ));
            }
            if s.ret <= s.function && (f.resume == 0 || s.ret <= f.resume) {
                return Err(format!(
                    "{}: {} site {} returns to {:#x}, before the function",
                    v.isa, f.name, s.index, s.ret
                ));
            }
            nsites += 1;
        }
    }
    done.push(format!(
        "{} functions and {nsites} site locations consistent with the variants",
        meta.functions.len()
    ));
    Ok(done)
}

fn hexes(v: &[u64]) -> String {
    v.iter()
        .map(|a| format!("{a:#x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn read_at(f: &object::File, addr: u64, len: usize) -> Option<Vec<u8>> {
    use object::ObjectSection;
    f.sections()
        .find(|s| s.address() <= addr && addr + len as u64 <= s.address() + s.size())
        .and_then(|s| {
            s.data()
                .ok()
                .map(|d| d[(addr - s.address()) as usize..][..len].to_vec())
        })
}
