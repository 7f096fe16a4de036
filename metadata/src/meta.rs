//! The metadata hld writes into section `.hcontainer.meta` of a multi-ISA ELF,
//! and `hcontainer` reads to rewrite dumps (see docs/FORMATS.md, "Binary metadata").
//!
//! ```text
//! +---------------+---------+----------------+-------------------------------------+
//! | "HCMETA\0\0"  | ver u32 | body_len u64   | xz stream of the body (v5: zlib)     |
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
/// Version 2: an xz stream (LZMA2 behind the ISA's branch converter).
/// Version 1 was a zlib stream; readers still take it.
pub const VARIANT_VERSION: u32 = 2;
const VARIANT_ZLIB: u32 = 1;
/// Largest executable a reader unpacks (sqlite3's variant is ~11 MiB).
const MAX_VARIANT: u64 = 1 << 32;
/// LZMA2 preset: 6 (8 MiB dictionary) takes Lua's 1.47 MB aarch64 variant
/// to 374 KB in 0.6 s; 2 leaves 405 KB. Deflate (version 1) left 566 KB.
const VARIANT_PRESET: u32 = 6;
/// Blocks of an xz stream, compressed and unpacked in parallel: large
/// variants (sqlite3's 6.4 MB) take two threads; smaller ones and most
/// metadata bodies are one block, as with one thread.
const XZ_BLOCK: u64 = 3 << 20;
/// Memory an xz decoder may take: a preset 6 stream needs 9 MiB a thread.
const XZ_DECODER_MEMORY: u64 = 256 << 20;

/// A variant's executable as its section holds it (FORMATS.md §3, "packed
/// variant"): it only runs after being written out for qemu, so it travels
/// compressed — an xz stream whose filters suit the ISA's code
/// (`IsaInfo::packing`): sqlite3's stripped 6.4 MB aarch64 variant in 1.9 MB
/// (deflate: 3.0 MB), for about 0.1 s of unpacking.
pub fn pack_variant(exe: &[u8], isa: Isa) -> Vec<u8> {
    use crate::isa::BranchConverter;
    use liblzma::stream::{Filters, LzmaOptions};
    let packing = isa.info().packing;
    let mut lzma = LzmaOptions::new_preset(VARIANT_PRESET).expect("a valid preset");
    if packing.instruction_size_log2 > 0 {
        let bits = packing.instruction_size_log2;
        // lc + lp may not exceed 4.
        lzma.literal_context_bits(4 - bits)
            .literal_position_bits(bits)
            .position_bits(bits);
    }
    let mut filters = Filters::new();
    match packing.converter {
        BranchConverter::X86 => filters.x86(),
        BranchConverter::Arm64 => filters.arm64(),
    };
    filters.lzma2(&lzma);
    let out = xz(exe, filters);
    let mut w = Writer::new();
    w.bytes(VARIANT_MAGIC);
    w.u32(VARIANT_VERSION);
    w.u32(0);
    w.u64(exe.len() as u64);
    w.bytes(&out);
    w.buf
}

/// The executable `pack_variant` packed (or an older hld deflated).
pub fn unpack_variant(section: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(section, VARIANT_WHAT);
    r.magic(VARIANT_MAGIC)?;
    let version = r.u32()?;
    r.u32()?;
    match version {
        VARIANT_VERSION => unpack(&mut r, MAX_VARIANT, Codec::Xz),
        VARIANT_ZLIB => unpack(&mut r, MAX_VARIANT, Codec::Zlib),
        found => Err(crate::DecodeError::BadVersion {
            what: VARIANT_WHAT,
            expected: VARIANT_VERSION,
            found,
        }),
    }
}

/// Threads an xz encoder or decoder uses: the machine's, at most four.
fn threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4)) as u32
}

/// `data` as one xz stream through `filters` (CRC32 checks), in blocks of
/// `XZ_BLOCK` compressed in parallel.
fn xz(data: &[u8], filters: liblzma::stream::Filters) -> Vec<u8> {
    use liblzma::stream::{Action, Check, MtStreamBuilder, Status};
    let mut stream = MtStreamBuilder::new()
        .threads(threads())
        .block_size(XZ_BLOCK)
        .filters(filters)
        .check(Check::Crc32)
        .encoder()
        .expect("xz encoder options are valid");
    let mut out = Vec::with_capacity(data.len() / 3 + 4096);
    let mut input = data;
    loop {
        let before = stream.total_in();
        let status = stream
            .process_vec(input, &mut out, Action::Finish)
            .expect("compressing into memory cannot fail");
        input = &input[(stream.total_in() - before) as usize..];
        if status == Status::StreamEnd {
            return out;
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1 << 16));
        }
    }
}

/// How a section's stream is compressed.
#[derive(Clone, Copy, Debug)]
enum Codec {
    Xz,
    /// Versions 1 (variants) and 3 to 5 (metadata).
    Zlib,
}

/// Reads `len u64 | stream` (the rest of `r`): exactly `len` bytes.
fn unpack(r: &mut Reader, max: u64, codec: Codec) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let at = r.pos();
    let len = r.u64()?;
    if len > max {
        return Err(r.invalid_at(at, &format!("length {len} is implausible")));
    }
    let compressed = r.bytes(r.remaining())?;
    let failed = |e: &dyn std::fmt::Display| {
        r.invalid_at(at + 8, &format!("cannot unpack ({codec:?}): {e}"))
    };
    let reader: Box<dyn std::io::Read> = match codec {
        Codec::Zlib => Box::new(flate2::read::ZlibDecoder::new(compressed)),
        Codec::Xz => {
            // Blocks unpack in parallel too (large variants have several).
            let stream = liblzma::stream::MtStreamBuilder::new()
                .threads(threads())
                .memlimit_stop(XZ_DECODER_MEMORY)
                .memlimit_threading(XZ_DECODER_MEMORY)
                .decoder()
                .map_err(|e| failed(&e))?;
            Box::new(liblzma::read::XzDecoder::new_stream(compressed, stream))
        }
    };
    let mut out = Vec::with_capacity(len as usize);
    reader
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(|e| failed(&e))?;
    if out.len() as u64 != len {
        return Err(r.invalid_at(at, &format!("unpacks to {} bytes, not {len}", out.len())));
    }
    Ok(out)
}

const MAGIC: &[u8; 8] = b"HCMETA\0\0";
const WHAT: &str = "hcontainer metadata";
/// Version 6: the body is an xz stream (LZMA2 preset `META_PRESET`); it
/// was a zlib stream in version 5, which readers still take.
/// Version 5: a direct location is a value's stack slot (resume copies
/// pass slots to their statepoints); before, no location was direct.
/// Version 4: a poll's site location may list its values (polls with many
/// values pass them as deopt operands); before, polls had none.
pub const VERSION: u32 = 6;
const META_ZLIB: u32 = 5;
/// LZMA2 preset of the body: 2 takes sqlite3's 11.9 MB body to 0.81 MB
/// in about the time deflate took (1.09 MB); unpacking it takes ~40 ms.
const META_PRESET: u32 = 2;
/// Largest body a reader unpacks: far above any real program's (sqlite3's
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
    /// The section's bytes. The body is compressed: per-site records repeat
    /// types and locations, and it shrinks ~15x (sqlite3's metadata from
    /// 11.9 MB to 0.81 MB; deflate, versions 3 to 5: 1.09 MB), for ~40 ms
    /// of unpacking per read.
    pub fn encode(&self) -> Vec<u8> {
        let body = self.encode_body();
        let mut filters = liblzma::stream::Filters::new();
        filters
            .lzma2(&liblzma::stream::LzmaOptions::new_preset(META_PRESET).expect("a valid preset"));
        let compressed = xz(&body, filters);
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
        let body = match r.u32()? {
            VERSION => unpack(&mut r, MAX_BODY, Codec::Xz)?,
            // The same body, deflated.
            META_ZLIB => unpack(&mut r, MAX_BODY, Codec::Zlib)?,
            found => {
                return Err(crate::DecodeError::BadVersion {
                    what: WHAT,
                    expected: VERSION,
                    found,
                })
            }
        };
        Self::decode_body(&body)
    }

    /// Reads what `encode_body` wrote.
    pub fn decode_body(data: &[u8]) -> Result<BinaryMeta> {
        // Offsets in errors are the unpacked body's.
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
