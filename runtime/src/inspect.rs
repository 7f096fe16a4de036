//! `hcontainer inspect`: what a multi-ISA program holds.

use crate::binary::Binary;
use object::{Object, ObjectSection};
use serde::Serialize;

#[derive(Serialize)]
pub struct SectionInfo {
    pub name: String,
    pub addr: u64,
    pub size: u64,
}

#[derive(Serialize)]
pub struct VariantInfo {
    pub isa: String,
    pub file_size: usize,
    pub sections: Vec<SectionInfo>,
    pub site_locations: usize,
}

#[derive(Serialize)]
pub struct Report {
    pub path: String,
    pub build_id: String,
    pub layout: hc_metadata::meta::Layout,
    pub functions: usize,
    pub instrumented: usize,
    pub sites: usize,
    pub variants: Vec<VariantInfo>,
}

pub fn report(bin: &Binary) -> anyhow::Result<Report> {
    let meta = &bin.meta;
    let mut variants = Vec::new();
    for isa in bin.isas() {
        let exe = bin.variant(isa)?;
        let f = object::File::parse(exe)?;
        let sections = f
            .sections()
            .filter(|s| s.address() != 0)
            .map(|s| SectionInfo {
                name: s.name().unwrap_or("?").to_string(),
                addr: s.address(),
                size: s.size(),
            })
            .collect();
        variants.push(VariantInfo {
            isa: isa.name().to_string(),
            file_size: exe.len(),
            sections,
            site_locations: meta.variant(isa).map(|v| v.sites.len()).unwrap_or(0),
        });
    }
    Ok(Report {
        path: bin.path.display().to_string(),
        build_id: meta.build_id.iter().map(|b| format!("{b:02x}")).collect(),
        layout: meta.layout.clone(),
        functions: meta.functions.len(),
        instrumented: meta.functions.iter().filter(|f| f.instrumented).count(),
        sites: meta.functions.iter().map(|f| f.sites.len()).sum(),
        variants,
    })
}

pub fn render(r: &Report) -> String {
    let mut s = String::new();
    s += &format!("{}: multi-ISA program, build {}\n", r.path, r.build_id);
    s += &format!(
        "  ISAs: {}\n",
        r.variants
            .iter()
            .map(|v| v.isa.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    s += &format!(
        "  functions: {} ({} instrumented), sites: {}\n",
        r.functions, r.instrumented, r.sites
    );
    let l = &r.layout;
    s += &format!(
        "  migrated data {:#x}..{:#x}, arch-local {:#x}..{:#x}, TLS {} bytes (align {}), main at {:#x}\n",
        l.data_start, l.data_end, l.local_start, l.local_end, l.tls_memsz, l.tls_align, l.main
    );
    for v in &r.variants {
        s += &format!(
            "  {} variant: {} bytes, {} site locations\n",
            v.isa, v.file_size, v.site_locations
        );
        for sec in &v.sections {
            s += &format!(
                "    {:<20} {:#10x} {:>10} bytes\n",
                sec.name, sec.addr, sec.size
            );
        }
    }
    s
}

/// A dump or snapshot as JSON: everything but memory contents.
pub fn image_json(img: &hc_metadata::image::Image) -> serde_json::Value {
    serde_json::json!({
        "kind": if img.snapshot { "snapshot" } else { "dump" },
        "isa": img.isa,
        "build_id": img.build_id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "registers": img.regs.as_ref().map(|r| serde_json::json!({
            "pc": format!("{:#x}", r.pc),
            "sp": format!("{:#x}", r.sp),
            "gpr": r.gpr.iter().map(|g| format!("{g:#x}")).collect::<Vec<_>>(),
        })),
        "regions": img.regions.iter().map(|r| serde_json::json!({
            "addr": format!("{:#x}", r.addr),
            "map_len": r.map_len,
            "data_len": r.data.len(),
            "prot": r.prot,
            "kind": r.kind,
        })).collect::<Vec<_>>(),
        "tls": img.tls.map(|(a, b)| serde_json::json!({"addr": format!("{a:#x}"), "size": b.len()})),
        "fds": img.fds,
        "misc": img.misc,
        "frames": img.frames.iter().map(|f| serde_json::json!({
            "function": format!("{:#x}", f.function),
            "site": f.site,
            "values": f.values.len(),
        })).collect::<Vec<_>>(),
    })
}
