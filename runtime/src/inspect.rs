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
        "signals": img.signals,
        "frames": img.frames.iter().map(|f| serde_json::json!({
            "function": format!("{:#x}", f.function),
            "site": f.site,
            "values": f.values.len(),
        })).collect::<Vec<_>>(),
    })
}

/// `hcontainer sites`: how much of a program can migrate, and why the rest cannot.
#[derive(Serialize)]
pub struct SitesReport {
    pub program: String,
    /// Every place a running process can be stopped for migration (entry and
    /// loop polls, calls that may reach one), migratable or not.
    pub total: u64,
    pub migratable: u64,
    /// Migratable share in percent.
    pub share: f64,
    pub not_migratable: Vec<ReasonGroup>,
}

#[derive(Serialize)]
pub struct ReasonGroup {
    pub reason: String,
    pub sites: u64,
    pub functions: Vec<LostFunction>,
}

#[derive(Serialize)]
pub struct LostFunction {
    pub function: String,
    pub file: String,
    pub sites: u64,
    pub detail: String,
}

/// Why calls of an instrumented function are left out, by category.
fn lost_call_detail(reason: &str) -> &'static str {
    match reason {
        "isa-specific-slot" => "calls after which a stack slot laid out differently on each ISA (struct stat, long double) is still read",
        "long-double-result" => "calls returning a long double (LLVM's x86_64 back end cannot make them statepoints)",
        _ => "calls a variadic function of the program (a statepoint cannot wrap it)",
    }
}

pub fn sites(bin: &Binary) -> SitesReport {
    let mut migratable = 0u64;
    let mut groups: std::collections::BTreeMap<String, Vec<LostFunction>> = Default::default();
    for f in &bin.meta.functions {
        if f.instrumented {
            migratable += f.sites.len() as u64;
        }
        for (reason, n) in &f.lost {
            // (A function with nothing but left-out calls is not
            // instrumented, and has no reason of its own.)
            let detail = if f.instrumented || f.reason.is_empty() {
                lost_call_detail(reason).to_string()
            } else {
                f.reason
                    .split_once(": ")
                    .map(|(_, d)| d)
                    .unwrap_or(&f.reason)
                    .to_string()
            };
            groups
                .entry(reason.clone())
                .or_default()
                .push(LostFunction {
                    function: f.name.clone(),
                    file: f.file.clone(),
                    sites: *n as u64,
                    detail,
                });
        }
    }
    let mut not_migratable: Vec<ReasonGroup> = groups
        .into_iter()
        .map(|(reason, mut functions)| {
            functions.sort_by(|a, b| b.sites.cmp(&a.sites).then(a.function.cmp(&b.function)));
            ReasonGroup {
                sites: functions.iter().map(|f| f.sites).sum(),
                reason,
                functions,
            }
        })
        .collect();
    not_migratable.sort_by_key(|g| std::cmp::Reverse(g.sites));
    let lost: u64 = not_migratable.iter().map(|g| g.sites).sum();
    let total = migratable + lost;
    SitesReport {
        program: bin.path.display().to_string(),
        total,
        migratable,
        share: if total == 0 {
            100.0
        } else {
            migratable as f64 * 100.0 / total as f64
        },
        not_migratable,
    }
}

pub fn render_sites(r: &SitesReport) -> String {
    let mut s = format!(
        "{}: {} sites, {} migratable ({:.2}%)\n",
        r.program, r.total, r.migratable, r.share
    );
    if !r.not_migratable.is_empty() {
        s += &format!("not migratable ({} sites):\n", r.total - r.migratable);
    }
    for g in &r.not_migratable {
        s += &format!("  {} ({} sites)\n", g.reason, g.sites);
        for f in &g.functions {
            s += &format!(
                "    {} ({}): {} sites: {}\n",
                f.function, f.file, f.sites, f.detail
            );
        }
    }
    s
}
