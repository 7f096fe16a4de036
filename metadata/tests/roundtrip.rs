//! Every format: write-then-read round trips, and no input — random or a
//! valid encoding with bytes changed or cut — makes a reader panic.

use hc_metadata::image::{
    Attrs, FdInfo, Frame, Image, MemoryFile, Misc, Region, RegionKind, Regs, SigAction, Signals,
};
use hc_metadata::meta::{self, BinaryMeta, FunctionMeta, Layout, SiteLocation, VariantMeta};
use hc_metadata::sites::{FunctionSites, Site, SiteKind, SiteTable};
use hc_metadata::stackmap::{self, Location};
use hc_metadata::types::ValueType;
use hc_metadata::Isa;
use proptest::prelude::*;

fn sample_table() -> SiteTable {
    SiteTable {
        source: "a.c".into(),
        functions: vec![FunctionSites {
            symbol: "main".into(),
            section: ".text.main".into(),
            resume_section: ".text.main.hc.resume".into(),
            instrumented: true,
            reason: String::new(),
            frame: vec![(0, 64), (64, 8)],
            record: vec![
                ValueType::I32,
                ValueType::Ptr,
                ValueType::F64,
                ValueType::V128,
                ValueType::I1,
            ],
            sites: vec![
                Site {
                    kind: SiteKind::EntryPoll,
                    callee: String::new(),
                    slots: vec![0, 1],
                },
                Site {
                    kind: SiteKind::Call,
                    callee: "f".into(),
                    slots: vec![2, 3, 4],
                },
            ],
            lost: vec![("variadic".into(), 2)],
        }],
    }
}

fn sample_meta() -> BinaryMeta {
    let t = sample_table();
    BinaryMeta {
        build_id: [7; 16],
        layout: Layout {
            main: 0x401000,
            data_start: 0x420000,
            data_end: 0x421000,
            local_start: 0x430000,
            local_end: 0x440000,
            tls_memsz: 16,
            tls_filesz: 8,
            tls_align: 8,
        },
        functions: vec![FunctionMeta {
            addr: 0x401000,
            resume: 0x402000,
            name: "main".into(),
            file: "a.c".into(),
            instrumented: true,
            reason: String::new(),
            record: t.functions[0].record.clone(),
            sites: t.functions[0].sites.clone(),
            lost: vec![("setjmp".into(), 3)],
        }],
        variants: vec![VariantMeta {
            isa: Isa::Aarch64,
            sites: vec![SiteLocation {
                ret: 0x401010,
                function: 0x401000,
                index: 1,
                locations: vec![
                    Location::Register { reg: 72, size: 8 },
                    Location::Indirect {
                        reg: 31,
                        offset: 16,
                        size: 16,
                    },
                    Location::Constant(-3),
                ],
            }],
        }],
    }
}

fn sample_snapshot(mem: &[u8]) -> Image<'_> {
    Image {
        snapshot: true,
        isa: Isa::X86_64,
        build_id: [9; 16],
        regs: None,
        regions: vec![Region {
            addr: 0x5000,
            map_len: 0x2000,
            prot: 3,
            kind: RegionKind::Anon,
            data: mem,
        }],
        tls: Some((0x7000, &mem[..8])),
        fds: vec![
            FdInfo {
                fd: 3,
                flags: 2,
                fdflags: 1,
                mode: 0o100644,
                offset: 17,
                dev: 1,
                ino: 2,
                shares: None,
                locks: 1,
                path: "/tmp/x".into(),
            },
            FdInfo {
                fd: 4,
                flags: 2,
                fdflags: 0,
                mode: 0o100644,
                offset: 17,
                dev: 1,
                ino: 2,
                shares: Some(3),
                locks: 0,
                path: "/tmp/x".into(),
            },
        ],
        misc: Misc {
            errno: 4,
            umask: 0o027,
            cwd: "/work/a dir".into(),
            argv_start: 1,
            stack_end: 2,
            shadow_base: 3,
            shadow_size: 4,
            dump_ns: 5,
            locale: ["C.UTF-8", "C", "C", "C", "C", "C"]
                .map(String::from)
                .to_vec(),
            thread_locale: 0,
            rlimits: (0..16).map(|r| (r, u64::MAX)).collect(),
            name: "worker-7".into(),
            cpu_ns: (1_500_000_000, 20_000_000),
            uid: [65534, 65534, 0],
            gid: [65534, 65534, 65534],
            groups: vec![65534, 27],
            no_new_privs: true,
            attrs: Attrs {
                known: 0x1ff,
                nice: -5,
                sched_policy: 3 | 0x4000_0000,
                sched_priority: 0,
                pdeathsig: 15,
                dumpable: 0,
                subreaper: 1,
                oom_score_adj: -500,
                timerslack_ns: 123_456,
                affinity: std::array::from_fn(|i| (i as u64) << 3 | 1),
                session_leader: true,
            },
        },
        signals: Signals {
            blocked: 1 << 13,
            timers: [(0, 1500), (0, 0), (1000, 250)],
            pending: 1 << 9,
            actions: vec![SigAction {
                signo: 14,
                flags: 0x1000_0000,
                handler: 0x401234,
                mask: 3,
            }],
            altstack: (0x7f00_0000_0000, 65536),
        },
        frames: vec![Frame {
            function: 0x401000,
            site: 1,
            values: vec![1; 40],
        }],
        memory: None,
    }
}

/// A snapshot whose large region stays in a "dump" (`file`), as a
/// migration writes it.
fn referencing_snapshot<'a>(small: &'a [u8], file: &'a [u8]) -> Image<'a> {
    let mut s = sample_snapshot(small);
    s.regions.push(Region {
        addr: 0x10000,
        map_len: 0x12000,
        prot: 3,
        kind: RegionKind::Anon,
        data: &file[4096..4096 + 70_000],
    });
    s.memory = Some(MemoryFile {
        path: "/tmp/hc/dump-1-0".into(),
        bytes: file,
    });
    s
}

#[test]
fn round_trips() {
    let t = sample_table();
    assert_eq!(SiteTable::decode(&t.encode()).unwrap(), t);
    let m = sample_meta();
    assert_eq!(BinaryMeta::decode(&m.encode()).unwrap(), m);
    assert_eq!(BinaryMeta::decode_body(&m.encode_body()).unwrap(), m);
    let mem = vec![0xabu8; 100];
    let s = sample_snapshot(&mem);
    assert_eq!(Image::decode(&s.encode(), true).unwrap(), s);
    let mut d = sample_snapshot(&mem);
    d.snapshot = false;
    d.frames.clear();
    d.regs = Some(Regs {
        gpr: [5; 32],
        pc: 0x401010,
        sp: 0x7ff0,
        vec: [[1; 16]; 32],
    });
    assert_eq!(Image::decode(&d.encode(), false).unwrap(), d);
}

#[test]
fn large_snapshot_memory_starts_on_a_page_of_the_file() {
    // Restore maps such data straight from the snapshot file.
    let mem: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let small = vec![0xabu8; 100];
    let mut s = sample_snapshot(&small);
    s.regions.push(Region {
        addr: 0x10000,
        map_len: 0x12000,
        prot: 3,
        kind: RegionKind::Anon,
        data: &mem,
    });
    let bytes = s.encode();
    let at = bytes
        .windows(64)
        .position(|w| w == &mem[..64])
        .expect("region data in the file");
    assert_eq!(at % 4096, 0, "data at file offset {at:#x}");
    assert_eq!(Image::decode(&bytes, true).unwrap(), s);
}

#[test]
fn a_migration_snapshot_refers_to_the_dump_for_memory() {
    let file: Vec<u8> = (0..80_000u32).map(|i| (i % 253) as u8).collect();
    let small = vec![0xabu8; 100];
    let s = referencing_snapshot(&small, &file);
    let bytes = s.encode();
    // The large region is not copied; the small one (outside the file) is.
    assert!(bytes.len() < 4096, "{} bytes", bytes.len());
    assert_eq!(
        Image::memory_path(&bytes).as_deref(),
        Some("/tmp/hc/dump-1-0")
    );
    assert_eq!(
        Image::decode_with_memory(&bytes, true, Some(&file)).unwrap(),
        s
    );
    // Without the memory file, or with one too short, decoding says so.
    let e = Image::decode(&bytes, true).unwrap_err().to_string();
    assert!(
        e.contains("/tmp/hc/dump-1-0") && e.contains("not read"),
        "{e}"
    );
    let e = Image::decode_with_memory(&bytes, true, Some(&file[..50_000]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("beyond the end of the memory file"), "{e}");
    // A self-contained snapshot names no memory file.
    assert_eq!(Image::memory_path(&sample_snapshot(&small).encode()), None);
}

#[test]
fn damaged_compressed_metadata_is_named() {
    let enc = sample_meta().encode();
    // Past magic, version and length: inside the xz stream.
    let n = enc.len();
    for damaged in [
        enc[..n - 6].to_vec(),
        enc.iter()
            .enumerate()
            .map(|(i, b)| if i == 20 + (n - 20) / 2 { b ^ 0x55 } else { *b })
            .collect(),
    ] {
        let e = BinaryMeta::decode(&damaged).unwrap_err().to_string();
        assert!(e.contains("hcontainer metadata"), "{e}");
        assert!(
            e.contains("cannot unpack") || e.contains("unpacks to"),
            "{e}"
        );
    }
}

/// `data` as a zlib stream, the form of variants (v1) and metadata (v5)
/// before xz (any level: readers do not depend on it).
fn deflated(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// Bytes that compress well, standing in for an executable.
fn sample_exe() -> Vec<u8> {
    (0..50_000u32).map(|i| (i * 7 % 13) as u8).collect()
}

/// Metadata an earlier hld wrote (version 5: the same body, deflated) still
/// decodes.
#[test]
fn deflated_metadata_of_earlier_builds_still_decodes() {
    let body = sample_meta().encode_body();
    let mut v5 = b"HCMETA\0\0".to_vec();
    v5.extend(5u32.to_le_bytes());
    v5.extend((body.len() as u64).to_le_bytes());
    v5.extend(deflated(&body));
    assert_eq!(BinaryMeta::decode(&v5).unwrap(), sample_meta());
    let mut v4 = v5.clone();
    v4[8..12].copy_from_slice(&4u32.to_le_bytes());
    let e = BinaryMeta::decode(&v4).unwrap_err().to_string();
    assert!(e.contains("hcontainer metadata") && e.contains('4'), "{e}");
}

#[test]
fn packed_variants_unpack_to_their_bytes_or_say_what_is_wrong() {
    let exe = sample_exe();
    for isa in [Isa::Aarch64, Isa::X86_64] {
        let packed = meta::pack_variant(&exe, isa);
        assert!(
            packed.len() < exe.len() / 4,
            "{isa}: {} bytes",
            packed.len()
        );
        assert_eq!(meta::unpack_variant(&packed).unwrap(), exe, "{isa}");
        let mut bad = packed.clone();
        let n = bad.len();
        bad[n / 2] ^= 0x55;
        let e = meta::unpack_variant(&bad).unwrap_err().to_string();
        assert!(
            e.contains("packed variant") && e.contains("cannot unpack"),
            "{e}"
        );
        let e = meta::unpack_variant(&packed[..n - 20])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("packed variant") && e.contains("cannot unpack"),
            "{e}"
        );
    }
    let e = meta::unpack_variant(&exe).unwrap_err().to_string();
    assert!(e.contains("bad magic"), "{e}");
    let mut future = meta::pack_variant(&exe, Isa::Aarch64);
    future[8..12].copy_from_slice(&9u32.to_le_bytes());
    let e = meta::unpack_variant(&future).unwrap_err().to_string();
    assert!(e.contains("packed variant") && e.contains('9'), "{e}");
}

/// Executables an earlier hld deflated (version 1) still unpack.
#[test]
fn deflated_variants_of_earlier_builds_still_unpack() {
    let exe = sample_exe();
    let mut v1 = b"HCEXEZ\0\0".to_vec();
    v1.extend(1u32.to_le_bytes());
    v1.extend(0u32.to_le_bytes());
    v1.extend((exe.len() as u64).to_le_bytes());
    v1.extend(deflated(&exe));
    assert_eq!(meta::unpack_variant(&v1).unwrap(), exe);
    let n = v1.len();
    v1[n - 6] ^= 0x55;
    let e = meta::unpack_variant(&v1).unwrap_err().to_string();
    assert!(
        e.contains("packed variant") && e.contains("cannot unpack (Zlib)"),
        "{e}"
    );
}

#[test]
fn a_dump_is_not_a_snapshot() {
    let mem = vec![0u8; 16];
    let s = sample_snapshot(&mem).encode();
    let e = Image::decode(&s, false).unwrap_err().to_string();
    assert!(e.contains("bad magic") && e.contains("not a dump"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Image::decode(&data, true);
        let _ = Image::decode(&data, false);
        let _ = BinaryMeta::decode(&data);
        let _ = SiteTable::decode(&data);
        let _ = stackmap::parse(&data);
        let _ = meta::unpack_variant(&data);
    }

    #[test]
    fn damaged_encodings_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mem = vec![0x11u8; 64];
        let file = vec![0x22u8; 80_000];
        let referencing = referencing_snapshot(&mem, &file).encode();
        let variant = meta::pack_variant(&file[..3000], Isa::Aarch64);
        for enc in [sample_snapshot(&mem).encode(), referencing, sample_meta().encode(), sample_meta().encode_body(), sample_table().encode(), variant] {
            let mut changed = enc.clone();
            let i = pos.index(changed.len());
            changed[i] = byte;
            let short = &enc[..cut.index(enc.len())];
            for data in [&changed[..], short] {
                let _ = Image::decode(data, true);
                let _ = Image::decode_with_memory(data, true, Some(&file[..cut.index(file.len())]));
                let _ = Image::memory_path(data);
                let _ = BinaryMeta::decode(data);
                let _ = BinaryMeta::decode_body(data);
                let _ = SiteTable::decode(data);
                let _ = meta::unpack_variant(data);
            }
        }
    }
}

/// x87 extended and binary128 encodings of an f64, built independently.
fn f64_as_x87(d: f64) -> (u64, u64) {
    let b = d.to_bits();
    let sign = b >> 63;
    let exp = (b >> 52) & 0x7ff;
    let frac = b & ((1 << 52) - 1);
    match exp {
        0 if frac == 0 => (0, sign << 15),
        0x7ff => ((1 << 63) | (frac << 11), (sign << 15) | 0x7fff),
        0 => {
            // An f64 denormal is a normal x87 number: shift the leading one up.
            let lz = frac.leading_zeros();
            let e = 63 - 1074 + 16383 - lz as i64;
            (frac << lz, (sign << 15) | e as u64)
        }
        _ => (
            (1 << 63) | (frac << 11),
            (sign << 15) | (exp + 16383 - 1023),
        ),
    }
}

fn f64_as_quad(d: f64) -> (u64, u64) {
    let b = d.to_bits();
    let sign = b >> 63;
    let exp = (b >> 52) & 0x7ff;
    let frac = u128::from(b & ((1 << 52) - 1));
    let (e, f) = match exp {
        0 if frac == 0 => (0, 0),
        0x7ff => (0x7fff, frac << 60),
        0 => {
            // The leading one at bit 63 - lz of the 64-bit field.
            let lz = (frac as u64).leading_zeros();
            let e = 63 - 1074 + 16383 - lz as i64;
            (e as u64, (frac << (49 + lz)) & ((1 << 112) - 1))
        }
        _ => (exp + 16383 - 1023, frac << 60),
    };
    (f as u64, (sign << 63) | (e << 48) | (f >> 64) as u64)
}

proptest! {
    #[test]
    fn long_doubles_convert_exactly_from_x87(bits in any::<u64>(), tiny in any::<bool>()) {
        // Half the cases denormal f64s (normal x87 numbers).
        let d = f64::from_bits(if tiny { bits & ((1 << 52) - 1) | (bits & (1 << 63)) } else { bits });
        let (lo, hi) = f64_as_x87(d);
        prop_assert_eq!(hc_metadata::types::x87_to_quad(lo, hi), f64_as_quad(d), "{:e}", d);
    }
}

#[test]
fn x87_specials_and_denormals_convert() {
    use hc_metadata::types::x87_to_quad;
    // 1.0, -2.5, +inf, a quiet NaN: from f64 encodings built above.
    for d in [
        1.0,
        -2.5,
        f64::INFINITY,
        f64::NAN,
        0.0,
        -0.0,
        f64::MIN_POSITIVE / 8.0,
    ] {
        let (lo, hi) = f64_as_x87(d);
        assert_eq!(x87_to_quad(lo, hi), f64_as_quad(d), "{d:e}");
    }
    // The smallest x87 denormal, 2^-16445: binary128 keeps it, as 2^-16445
    // = fraction bit 49 above the binary128 denormal unit 2^-16494.
    assert_eq!(x87_to_quad(1, 0), (1 << 49, 0));
    // A pseudo-denormal (exponent 0, integer bit set) is 2^-16382.
    assert_eq!(x87_to_quad(1 << 63, 0), (0, 1 << 48));
    // 1/3 in x87 (rounded to 64 bits), its extra precision kept.
    let third = (0xaaaa_aaaa_aaaa_aaab, 0x3ffd);
    assert_eq!(
        x87_to_quad(third.0, third.1),
        (0x5556 << 48, 0x3ffd_5555_5555_5555)
    );
}
