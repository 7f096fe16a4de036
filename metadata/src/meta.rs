//! The metadata hld writes into section `.hcontainer.meta` of a multi-ISA ELF,
//! and `hcontainer` reads to rewrite dumps (see docs/FORMATS.md, "Binary metadata").
//!
//! ```text
//! +---------------+---------+----------------+-------------------------------------+
//! | "HCMETA\0\0"  | ver u32 | body_len u64   | zlib stream of the body (RFC 1950)   |
//! +---------------+---------+----------------+-------------------------------------+
//! body:      build_id 16 | layout | functions | nvariants u32 | Variant...
//! layout:    main u64 | data_start u64 | data_end u64 | local_start u64 | local_end u64
//!            | tls_memsz u64 | tls_filesz u64 | tls_align u64
//! functions: n u32, each: addr u64 | name str | file str | instrumented u32 | reason str
//!            | record types (as sites.rs) | sites (as sites.rs) | lost (as sites.rs)
//! Variant:   isa u32 | nsites u32 | site: ret u64 | fn u64 | index u32 | nlocs u32 | loc...
//! loc:       kind u8 (1 reg, 2 direct, 3 indirect, 4 const) | pad u8 | size u16 | reg u16 | pad u16 | value i64
//! ```

use crate::isa::Isa;
use crate::sites::Site;
use crate::stackmap::Location;
use crate::types::ValueType;
use crate::wire::{Reader, Result, Writer};
use std::collections::HashMap;

pub const SECTION: &str = ".hcontainer.meta";
/// Section of the container ELF holding the complete executable of another ISA
/// (packed: `pack_variant`).
pub fn variant_section(isa: Isa) -> String {
    format!(".hcontainer.exe.{}", isa.name())
}

const VARIANT_MAGIC: &[u8; 8] = b"HCEXEZ\0\0";
const VARIANT_WHAT: &str = "packed variant";
pub const VARIANT_VERSION: u32 = 1;
/// Largest executable a reader inflates (sqlite3's variant is ~11 MiB).
const MAX_VARIANT: u64 = 1 << 32;

/// A variant's executable as its section holds it (FORMATS.md §3, "packed
/// variant"): it only runs after being written out for qemu, so it travels
/// deflated — less than half the bytes, for ~60 ms of inflating sqlite3's
/// 11 MiB.
pub fn pack_variant(exe: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    // Level 2: sqlite3's 11.4 MB in ~0.3 s to 46%; level 1 leaves 50%,
    // level 6 takes four times as long for 44%.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(2));
    z.write_all(exe).expect("writing to a Vec cannot fail");
    let mut w = Writer::new();
    w.bytes(VARIANT_MAGIC);
    w.u32(VARIANT_VERSION);
    w.u32(0);
    w.u64(exe.len() as u64);
    w.bytes(&z.finish().expect("writing to a Vec cannot fail"));
    w.buf
}

/// The executable `pack_variant` packed.
pub fn unpack_variant(section: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(section, VARIANT_WHAT);
    r.magic(VARIANT_MAGIC)?;
    r.version(VARIANT_VERSION)?;
    r.u32()?;
    inflate(&mut r, MAX_VARIANT)
}

/// Reads `len u64 | zlib stream` (the rest of `r`): exactly `len` bytes.
fn inflate(r: &mut Reader, max: u64) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let at = r.pos();
    let len = r.u64()?;
    if len > max {
        return Err(r.invalid_at(at, &format!("length {len} is implausible")));
    }
    let compressed = r.bytes(r.remaining())?;
    let mut out = Vec::with_capacity(len as usize);
    flate2::read::ZlibDecoder::new(compressed)
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(|e| r.invalid_at(at + 8, &format!("cannot inflate: {e}")))?;
    if out.len() as u64 != len {
        return Err(r.invalid_at(at, &format!("inflates to {} bytes, not {len}", out.len())));
    }
    Ok(out)
}
const MAGIC: &[u8; 8] = b"HCMETA\0\0";
const WHAT: &str = "hcontainer metadata";
/// Version 5: a direct location is a value's stack slot (resume copies
/// pass slots to their statepoints); before, no location was direct.
/// Version 4: a poll's site location may list its values (polls with many
/// values pass them as deopt operands); before, polls had none.
pub const VERSION: u32 = 5;
/// Largest body a reader inflates: far above any real program's (sqlite3's
/// is ~10 MiB), low enough that a corrupt length cannot exhaust memory.
const MAX_BODY: u64 = 1 << 30;

/// Address-space layout shared by all variants.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    /// Address of `main`, the outermost frame a capture walks to.
    pub main: u64,
    /// Aligned writable data (.data, .bss, ...): migrated byte for byte.
    pub data_start: u64,
    pub data_end: u64,
    /// Arch-local data: each variant keeps its own, restore never writes it.
    pub local_start: u64,
    pub local_end: u64,
    pub tls_memsz: u64,
    pub tls_filesz: u64,
    pub tls_align: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FunctionMeta {
    pub addr: u64,
    /// Address of its resume copy, 0 if none (sites::FunctionSites::resume_section).
    pub resume: u64,
    pub name: String,
    /// The source file of its translation unit.
    pub file: String,
    pub instrumented: bool,
    pub reason: String,
    /// Types of the function's frame-record values (see sites::FunctionSites).
    pub record: Vec<ValueType>,
    pub sites: Vec<Site>,
    /// Places that cannot migrate, by reason category (see sites::FunctionSites).
    pub lost: Vec<(String, u32)>,
}

/// One site in one variant: where it returns to and where its values are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteLocation {
    pub ret: u64,
    pub function: u64,
    pub index: u32,
    pub locations: Vec<Location>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantMeta {
    pub isa: Isa,
    pub sites: Vec<SiteLocation>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryMeta {
    pub build_id: [u8; 16],
    pub layout: Layout,
    pub functions: Vec<FunctionMeta>,
    pub variants: Vec<VariantMeta>,
}

impl BinaryMeta {
    /// The section's bytes. The body is compressed (version 3): per-site
    /// records repeat types and locations, and it shrinks ~9x (sqlite3's
    /// metadata from 9.7 MB to 1.0 MB), for ~30 ms of inflating per read.
    pub fn encode(&self) -> Vec<u8> {
        use std::io::Write as _;
        let body = self.encode_body();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&body).expect("writing to a Vec cannot fail");
        let compressed = z.finish().expect("writing to a Vec cannot fail");
        let mut w = Writer::new();
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.u64(body.len() as u64);
        w.bytes(&compressed);
        w.buf
    }

    /// The uncompressed body (no magic, version or length).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.build_id);
        let l = &self.layout;
        for v in [
            l.main,
            l.data_start,
            l.data_end,
            l.local_start,
            l.local_end,
            l.tls_memsz,
            l.tls_filesz,
            l.tls_align,
        ] {
            w.u64(v);
        }
        w.u32(self.functions.len() as u32);
        for f in &self.functions {
            w.u64(f.addr);
            w.u64(f.resume);
            w.str(&f.name);
            w.str(&f.file);
            w.u32(f.instrumented as u32);
            w.str(&f.reason);
            crate::sites::encode_types(&mut w, &f.record);
            crate::sites::encode_sites(&mut w, &f.sites);
            crate::sites::encode_lost(&mut w, &f.lost);
        }
        w.u32(self.variants.len() as u32);
        for v in &self.variants {
            w.u32(v.isa as u32);
            w.u32(v.sites.len() as u32);
            for s in &v.sites {
                w.u64(s.ret);
                w.u64(s.function);
                w.u32(s.index);
                w.u32(s.locations.len() as u32);
                for loc in &s.locations {
                    let (kind, size, reg, value) = match *loc {
                        Location::Register { reg, size } => (1, size, reg, 0),
                        Location::Direct { reg, offset } => (2, 8, reg, offset as i64),
                        Location::Indirect { reg, offset, size } => (3, size, reg, offset as i64),
                        Location::Constant(c) => (4, 8, 0, c),
                    };
                    w.u8(kind);
                    w.u8(0);
                    w.u16(size);
                    w.u16(reg);
                    w.u16(0);
                    w.i64(value);
                }
            }
        }
        w.buf
    }

    pub fn decode(data: &[u8]) -> Result<BinaryMeta> {
        let mut r = Reader::new(data, WHAT);
        r.magic(MAGIC)?;
        r.version(VERSION)?;
        let body = inflate(&mut r, MAX_BODY)?;
        Self::decode_body(&body)
    }

    /// Reads what `encode_body` wrote.
    pub fn decode_body(data: &[u8]) -> Result<BinaryMeta> {
        // Offsets in errors are the inflated body's.
        let mut r = Reader::new(data, WHAT);
        let build_id = r.array::<16>()?;
        let layout = Layout {
            main: r.u64()?,
            data_start: r.u64()?,
            data_end: r.u64()?,
            local_start: r.u64()?,
            local_end: r.u64()?,
            tls_memsz: r.u64()?,
            tls_filesz: r.u64()?,
            tls_align: r.u64()?,
        };
        let nf = r.count(32)?;
        let mut functions = Vec::with_capacity(nf);
        for _ in 0..nf {
            let addr = r.u64()?;
            let resume = r.u64()?;
            let name = r.str()?.to_string();
            let file = r.str()?.to_string();
            let instrumented = r.u32()? != 0;
            let reason = r.str()?.to_string();
            let record = crate::sites::decode_types(&mut r)?;
            let sites = crate::sites::decode_sites(&mut r)?;
            let lost = crate::sites::decode_lost(&mut r)?;
            functions.push(FunctionMeta {
                addr,
                resume,
                name,
                file,
                instrumented,
                reason,
                record,
                sites,
                lost,
            });
        }
        let nv = r.count(8)?;
        let mut variants = Vec::with_capacity(nv);
        for _ in 0..nv {
            let at = r.pos();
            let isa = Isa::from_u32(r.u32()?).ok_or_else(|| r.invalid_at(at, "unknown ISA"))?;
            let ns = r.count(24)?;
            let mut sites = Vec::with_capacity(ns);
            for _ in 0..ns {
                let ret = r.u64()?;
                let function = r.u64()?;
                let index = r.u32()?;
                let nl = r.count(16)?;
                let mut locations = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let at = r.pos();
                    let kind = r.u8()?;
                    r.u8()?;
                    let size = r.u16()?;
                    let reg = r.u16()?;
                    r.u16()?;
                    let value = r.i64()?;
                    locations.push(match kind {
                        1 => Location::Register { reg, size },
                        2 => Location::Direct {
                            reg,
                            offset: value as i32,
                        },
                        3 => Location::Indirect {
                            reg,
                            offset: value as i32,
                            size,
                        },
                        4 => Location::Constant(value),
                        _ => return Err(r.invalid_at(at, "unknown location kind")),
                    });
                }
                sites.push(SiteLocation {
                    ret,
                    function,
                    index,
                    locations,
                });
            }
            variants.push(VariantMeta { isa, sites });
        }
        Ok(BinaryMeta {
            build_id,
            layout,
            functions,
            variants,
        })
    }

    pub fn variant(&self, isa: Isa) -> Option<&VariantMeta> {
        self.variants.iter().find(|v| v.isa == isa)
    }

    pub fn function(&self, addr: u64) -> Option<&FunctionMeta> {
        self.functions
            .binary_search_by_key(&addr, |f| f.addr)
            .ok()
            .map(|i| &self.functions[i])
    }
}

impl VariantMeta {
    /// Index from return address to site, for the unwinder.
    pub fn by_return_address(&self) -> HashMap<u64, &SiteLocation> {
        self.sites.iter().map(|s| (s.ret, s)).collect()
    }
}
