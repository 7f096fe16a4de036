//! Dumps (written by the in-process runtime, raw and ISA-specific) and
//! snapshots (written by hcontainer, ISA-neutral, read by the runtime of the
//! destination). The C side is runtime/native/hcrt.h; the layouts here match
//! its structs byte for byte (see docs/FORMATS.md).
//!
//! ```text
//! header (32 bytes): magic 8 ("HCDUMP\0\0" | "HCSNAP\0\0") | version u32 | isa u32 | build_id 16
//! record:            kind u32 | pad u32 | len u64 | payload (len bytes, padded to 8)
//!   1 REGS    gpr[32] u64 | pc u64 | sp u64 | vec[32][16]            (dump only)
//!   2 REGION  addr u64 | map_len u64 | data_len u64 | prot u32 | kind u32 | data_skip u32
//!             | source u32 | data (source 0) or its offset in the memory file u64 (source 1)
//!   3 TLS     addr u64 | size u64 | bytes
//!   4 FDS     count u32 | pad u32 | (fd i32 | flags i32 | fdflags i32 | mode u32 | offset i64
//!             | dev u64 | ino u64 | path_len u32 | shares u32 | locks u32 | pad u32
//!             | path, padded to 8)...
//!   5 MISC    errno i32 | pad u32 | argv_start u64 | stack_end u64 | shadow_base u64
//!             | shadow_size u64 | dump_ns u64
//!   6 FRAMES  count u32 | pad u32 | (fn u64 | site u32 | size u32 | values)...  (snapshot only)
//!   8 MEMORY  path_len u32 | pad u32 | path (snapshot only, before any region of source 1)
//!   0 END
//! ```

use crate::wire::{DecodeError, Reader, Result, Writer};
use crate::Isa;

pub const DUMP_MAGIC: &[u8; 8] = b"HCDUMP\0\0";
pub const SNAP_MAGIC: &[u8; 8] = b"HCSNAP\0\0";
/// Version 10: the MISC record ends with the program's user, groups and
/// no_new_privs, then its scheduling and kernel attributes (`Attrs`).
/// Version 9: a descriptor names the earlier one whose open file it shares
/// (`shares`, a dup, where the pad was) and the locks it holds (`locks`);
/// the MISC record ends with the name the program gave itself and the CPU
/// time it has used.
/// Version 8: the MISC record ends with the resource limits.
/// Version 7: the MISC record ends with the locale.
/// Version 6: the SIGNALS record ends with the alternate signal stack.
/// Version 5: region kind 6, a file the program mapped (mapped again from
/// the file, not carried as bytes); a TLS record's address is where the
/// restored block goes.
pub const DUMP_VERSION: u32 = 10;
/// Version 12: as dump version 10. Version 11: as dump version 9. Version 10: as dump version 8. Version 9: as dump version 7. Version 8: as dump version 6. Version 7: as dump version 5.
/// Version 6: region data may stay in the dump it came from (the MEMORY
/// record names that file), so a migration does not copy memory twice.
/// Version 5: a frame record names the function a restore enters (its
/// resume copy, if it has one), not the function itself.
pub const SNAP_VERSION: u32 = 12;

const REC_END: u32 = 0;
const REC_REGS: u32 = 1;
const REC_REGION: u32 = 2;
const REC_TLS: u32 = 3;
const REC_FDS: u32 = 4;
const REC_MISC: u32 = 5;
const REC_FRAMES: u32 = 6;
const REC_SIGNALS: u32 = 7;
const REC_MEMORY: u32 = 8;

/// Region data inline in its record, or in the snapshot's memory file.
const SOURCE_INLINE: u32 = 0;
const SOURCE_MEMORY: u32 = 1;

/// Data this large, of a page-aligned region, starts on a page of the file,
/// so restore maps it (copy-on-write) instead of copying it. The runtime's
/// dump writer (`hcrt.c`, out_region) uses the same rule.
pub const MAP_THRESHOLD: usize = 64 << 10;

/// Registers at the migration point, as the asm stub saved them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regs {
    /// By DWARF number (x86_64: 0..15; aarch64: 0..31 with 31 = sp).
    pub gpr: [u64; 32],
    /// Return address of the migration-point call: the innermost site.
    pub pc: u64,
    /// Stack pointer after that call returns.
    pub sp: u64,
    /// 128-bit vector registers by number.
    pub vec: [[u8; 16]; 32],
}

pub const REGS_SIZE: usize = 784;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// Inside the program's aligned data: written in place on restore.
    Image = 1,
    /// Heap and other anonymous memory: mapped at the same address.
    Anon = 2,
    /// The native stack (dump only): read by the unwinder.
    Stack = 3,
    /// The main stack's argv/env area, mapped as data on restore.
    Argv = 4,
    /// The shadow stack; only its used part has data.
    Shadow = 5,
    /// A file the program mapped (read-only, or shared), mapped again from
    /// the file: data is offset u64 | flags u32 (1: shared) | pad u32 | path.
    File = 6,
    /// Shared memory no path maps again (`MAP_SHARED` anonymous memory, a
    /// deleted file's): its bytes, restored as shared anonymous memory.
    Shared = 7,
    /// The same, of a file the program still has open (a memfd): data is
    /// offset u64 | dev u64 | ino u64; mapped again from that descriptor.
    SharedFd = 8,
}

impl RegionKind {
    fn from_u32(v: u32) -> Option<RegionKind> {
        use RegionKind::*;
        [Image, Anon, Stack, Argv, Shadow, File, Shared, SharedFd]
            .into_iter()
            .find(|k| *k as u32 == v)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region<'a> {
    pub addr: u64,
    pub map_len: u64,
    pub prot: u32,
    pub kind: RegionKind,
    /// The first `data.len()` bytes; the rest of `map_len` is zero.
    pub data: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FdInfo {
    pub fd: i32,
    pub flags: i32,
    pub fdflags: i32,
    pub mode: u32,
    pub offset: i64,
    pub dev: u64,
    pub ino: u64,
    /// The earlier descriptor whose open file this one is (a dup: they
    /// share the offset), restored by duplicating it.
    pub shares: Option<i32>,
    /// The locks it holds: 1 flock, OFD or lease locks (they go with the
    /// open file, handed over as it is), 2 POSIX record locks.
    pub locks: u32,
    pub path: String,
}

impl FdInfo {
    /// `locks` bit: flock, OFD or lease locks, held by the open file.
    pub const LOCK_OPEN_FILE: u32 = 1;
    /// `locks` bit: POSIX record locks, held by the process.
    pub const LOCK_PROCESS: u32 = 2;
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Misc {
    pub errno: i32,
    pub umask: u32,
    /// The working directory (empty if unknown).
    pub cwd: String,
    pub argv_start: u64,
    pub stack_end: u64,
    pub shadow_base: u64,
    pub shadow_size: u64,
    pub dump_ns: u64,
    /// The locale by category (LC_CTYPE .. LC_MESSAGES), by name.
    pub locale: Vec<String>,
    /// The main thread's own locale (`uselocale`), a pointer; 0: the global one.
    pub thread_locale: u64,
    /// Each resource limit (RLIMIT_CPU .. RLIMIT_RTTIME): soft, hard.
    pub rlimits: Vec<(u64, u64)>,
    /// The name the program gave itself (`PR_SET_NAME`); empty: none.
    pub name: String,
    /// CPU time the program has used (user, system; ns), over every hop:
    /// its CPU clocks go on from there.
    pub cpu_ns: (u64, u64),
    /// Who the program is: user ids and group ids (real, effective,
    /// saved), supplementary groups (at most 32), `PR_SET_NO_NEW_PRIVS`.
    pub uid: [u32; 3],
    pub gid: [u32; 3],
    pub groups: Vec<u32>,
    pub no_new_privs: bool,
    pub attrs: Attrs,
}

/// How the kernel schedules and treats the process; a restore sets each
/// one `known` names again (runtime/native/hcrt.h, `enum hc_attr`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attrs {
    /// `Attrs::NICE` .. `Attrs::AFFINITY`: what the source could read.
    pub known: u32,
    pub nice: i32,
    /// `sched_getscheduler`'s answer (with `SCHED_RESET_ON_FORK`) and priority.
    pub sched_policy: u32,
    pub sched_priority: u32,
    pub pdeathsig: i32,
    pub dumpable: u32,
    pub subreaper: u32,
    pub oom_score_adj: i32,
    pub timerslack_ns: u64,
    /// CPUs 0-1023 the program may run on, bit n of word n / 64: CPU n.
    pub affinity: [u64; 16],
    /// It called `setsid()` (a daemon, apart from any terminal).
    pub session_leader: bool,
}

impl Attrs {
    pub const NICE: u32 = 1;
    pub const SCHED: u32 = 2;
    pub const PDEATHSIG: u32 = 4;
    pub const DUMPABLE: u32 = 8;
    pub const SUBREAPER: u32 = 16;
    pub const OOM_SCORE_ADJ: u32 = 32;
    pub const TIMERSLACK: u32 = 64;
    pub const AFFINITY: u32 = 128;
    pub const SESSION: u32 = 256;
}

/// Signal state: dispositions other than the default, the blocked mask and
/// the interval timers (real, virtual, profiling).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Signals {
    /// Blocked signals, bit n-1 for signal n.
    pub blocked: u64,
    /// (interval, remaining) in microseconds, for ITIMER_REAL, _VIRTUAL, _PROF.
    pub timers: [(u64, u64); 3],
    /// Standard signals pending (blocked) at the dump, bit n-1 for signal n.
    pub pending: u32,
    pub actions: Vec<SigAction>,
    /// The alternate signal stack (`sigaltstack`): address and size; size 0
    /// for none.
    pub altstack: (u64, u64),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SigAction {
    pub signo: u32,
    /// SA_* flags (the same values on every supported ISA).
    pub flags: u32,
    /// Handler address (the same in every variant), or 1 for SIG_IGN.
    pub handler: u64,
    /// Signals blocked while it runs.
    pub mask: u64,
}

/// A frame record: the site a frame was stopped at, and its live values in
/// the canonical layout (types::record_layout).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    pub function: u64,
    pub site: u32,
    pub values: Vec<u8>,
}

/// The file a snapshot's memory stays in: the dump it was made from. A
/// migration's restore maps the dump's pages instead of a second copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryFile<'a> {
    /// Absolute path, opened by the restoring process.
    pub path: String,
    /// The file's bytes; regions whose data lies inside refer to it.
    pub bytes: &'a [u8],
}

/// A dump or a snapshot, decoded (memory borrowed from the file's bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image<'a> {
    pub snapshot: bool,
    pub isa: Isa,
    pub build_id: [u8; 16],
    pub regs: Option<Regs>,
    pub regions: Vec<Region<'a>>,
    pub tls: Option<(u64, &'a [u8])>,
    pub fds: Vec<FdInfo>,
    pub misc: Misc,
    pub signals: Signals,
    pub frames: Vec<Frame>,
    /// Snapshots only: where region data that is not inline lives.
    pub memory: Option<MemoryFile<'a>>,
}

impl<'a> Image<'a> {
    /// Decodes a dump (`snapshot` false) or a self-contained snapshot.
    pub fn decode(data: &'a [u8], snapshot: bool) -> Result<Image<'a>> {
        Self::decode_with_memory(data, snapshot, None)
    }

    /// The memory file a snapshot names, if any (read it, then decode with
    /// [`Image::decode_with_memory`]).
    pub fn memory_path(data: &[u8]) -> Option<String> {
        let mut at = 32;
        while at + 16 <= data.len() {
            let kind = u32::from_le_bytes(data[at..at + 4].try_into().ok()?);
            let len = u64::from_le_bytes(data[at + 8..at + 16].try_into().ok()?) as usize;
            let body = data.get(at + 16..at + 16 + len)?;
            match kind {
                REC_END => return None,
                REC_MEMORY => {
                    let n = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
                    return Some(String::from_utf8_lossy(body.get(8..8 + n)?).into_owned());
                }
                _ => at += 16 + len.div_ceil(8) * 8,
            }
        }
        None
    }

    /// Decodes, with the bytes of the snapshot's memory file when it names
    /// one.
    pub fn decode_with_memory(
        data: &'a [u8],
        snapshot: bool,
        memory: Option<&'a [u8]>,
    ) -> Result<Image<'a>> {
        let what = if snapshot { "snapshot" } else { "dump" };
        let mut r = Reader::new(data, what);
        r.magic(if snapshot { SNAP_MAGIC } else { DUMP_MAGIC })?;
        r.version(if snapshot { SNAP_VERSION } else { DUMP_VERSION })?;
        let at = r.pos();
        let isa = Isa::from_u32(r.u32()?).ok_or_else(|| r.invalid_at(at, "unknown ISA"))?;
        let build_id = r.array::<16>()?;
        let mut img = Image {
            snapshot,
            isa,
            build_id,
            regs: None,
            regions: Vec::new(),
            tls: None,
            fds: Vec::new(),
            misc: Misc::default(),
            signals: Signals::default(),
            frames: Vec::new(),
            memory: None,
        };
        let mut ended = false;
        while !r.is_empty() {
            let start = r.pos();
            let kind = r.u32()?;
            r.u32()?;
            let len = r.u64()? as usize;
            let body = r.bytes(len)?;
            r.skip_to_align(8)?;
            let mut b = Reader::at(data, start + 16, what);
            let body_end = start + 16 + body.len();
            match kind {
                REC_END => {
                    ended = true;
                    break;
                }
                REC_REGS => {
                    if len != REGS_SIZE {
                        return Err(b.invalid("register record has the wrong size"));
                    }
                    let mut gpr = [0u64; 32];
                    for g in gpr.iter_mut() {
                        *g = b.u64()?;
                    }
                    let pc = b.u64()?;
                    let sp = b.u64()?;
                    let mut vec = [[0u8; 16]; 32];
                    for v in vec.iter_mut() {
                        *v = b.array()?;
                    }
                    img.regs = Some(Regs { gpr, pc, sp, vec });
                }
                REC_REGION => {
                    let addr = b.u64()?;
                    let map_len = b.u64()?;
                    let data_len = b.u64()? as usize;
                    let prot = b.u32()?;
                    let k = b.u32()?;
                    let kind = RegionKind::from_u32(k)
                        .ok_or_else(|| b.invalid_at(start, "unknown region kind"))?;
                    let skip = b.u32()? as usize;
                    let source = b.u32()?;
                    if data_len as u64 > map_len {
                        return Err(b.invalid_at(start, "region data longer than the region"));
                    }
                    if addr.checked_add(map_len).is_none() {
                        return Err(b.invalid_at(start, "region wraps the address space"));
                    }
                    let data = match source {
                        SOURCE_INLINE => {
                            if b.pos() + skip > body_end {
                                return Err(b.invalid_at(start, "region data outside its record"));
                            }
                            b.bytes(skip)?;
                            if b.pos() + data_len > body_end {
                                return Err(
                                    b.invalid_at(start, "region data longer than its record")
                                );
                            }
                            b.bytes(data_len)?
                        }
                        SOURCE_MEMORY if snapshot => {
                            let off = b.u64()? as usize;
                            let Some(mem) = &img.memory else {
                                return Err(b.invalid_at(
                                    start,
                                    "region data in a memory file, but no MEMORY record before it",
                                ));
                            };
                            off.checked_add(data_len)
                                .and_then(|end| mem.bytes.get(off..end))
                                .ok_or_else(|| {
                                    b.invalid_at(
                                        start,
                                        &format!(
                                            "region data beyond the end of the memory file {}",
                                            mem.path
                                        ),
                                    )
                                })?
                        }
                        _ => return Err(b.invalid_at(start, "unknown region data source")),
                    };
                    img.regions.push(Region {
                        addr,
                        map_len,
                        prot,
                        kind,
                        data,
                    });
                }
                REC_TLS => {
                    let addr = b.u64()?;
                    let size = b.u64()? as usize;
                    if b.pos() + size > body_end {
                        return Err(b.invalid_at(start, "TLS block longer than its record"));
                    }
                    img.tls = Some((addr, b.bytes(size)?));
                }
                REC_FDS => {
                    let n = b.count(56)?;
                    b.u32()?;
                    for _ in 0..n {
                        let fd = b.i32()?;
                        let flags = b.i32()?;
                        let fdflags = b.i32()?;
                        let mode = b.u32()?;
                        let offset = b.i64()?;
                        let dev = b.u64()?;
                        let ino = b.u64()?;
                        let path_len = b.u32()? as usize;
                        let shares = b.u32()?.checked_sub(1).map(|fd| fd as i32);
                        let locks = b.u32()?;
                        b.u32()?;
                        let path = String::from_utf8_lossy(b.bytes(path_len)?).into_owned();
                        b.skip_to_align(8)?;
                        img.fds.push(FdInfo {
                            fd,
                            flags,
                            fdflags,
                            mode,
                            offset,
                            dev,
                            ino,
                            shares,
                            locks,
                            path,
                        });
                    }
                }
                REC_MISC => {
                    let errno = b.i32()?;
                    let umask = b.u32()?;
                    let (argv_start, stack_end) = (b.u64()?, b.u64()?);
                    let (shadow_base, shadow_size, dump_ns) = (b.u64()?, b.u64()?, b.u64()?);
                    let cwd_len = b.u32()? as usize;
                    b.u32()?;
                    let cwd = String::from_utf8_lossy(b.bytes(cwd_len)?).into_owned();
                    b.bytes((8 - cwd_len % 8) % 8)?;
                    let thread_locale = b.u64()?;
                    let mut locale = Vec::with_capacity(6);
                    for _ in 0..6 {
                        let name = b.bytes(24)?;
                        let end = name.iter().position(|&c| c == 0).unwrap_or(24);
                        locale.push(String::from_utf8_lossy(&name[..end]).into_owned());
                    }
                    let mut rlimits = Vec::with_capacity(16);
                    for _ in 0..16 {
                        rlimits.push((b.u64()?, b.u64()?));
                    }
                    let name = b.bytes(16)?;
                    let end = name.iter().position(|&c| c == 0).unwrap_or(16);
                    let name = String::from_utf8_lossy(&name[..end]).into_owned();
                    let cpu_ns = (b.u64()?, b.u64()?);
                    let uid = [b.u32()?, b.u32()?, b.u32()?];
                    let gid = [b.u32()?, b.u32()?, b.u32()?];
                    let ngroups = (b.u32()? as usize).min(32);
                    let no_new_privs = b.u32()? != 0;
                    let mut groups = Vec::with_capacity(ngroups);
                    for i in 0..32 {
                        let g = b.u32()?;
                        if i < ngroups {
                            groups.push(g);
                        }
                    }
                    let mut attrs = Attrs {
                        known: b.u32()?,
                        nice: b.i32()?,
                        sched_policy: b.u32()?,
                        sched_priority: b.u32()?,
                        pdeathsig: b.i32()?,
                        dumpable: b.u32()?,
                        subreaper: b.u32()?,
                        oom_score_adj: b.i32()?,
                        timerslack_ns: b.u64()?,
                        affinity: [0; 16],
                        session_leader: false,
                    };
                    for w in attrs.affinity.iter_mut() {
                        *w = b.u64()?;
                    }
                    attrs.session_leader = b.u32()? != 0;
                    b.u32()?;
                    img.misc = Misc {
                        name,
                        cpu_ns,
                        uid,
                        gid,
                        groups,
                        no_new_privs,
                        attrs,
                        locale,
                        thread_locale,
                        rlimits,
                        errno,
                        umask,
                        cwd,
                        argv_start,
                        stack_end,
                        shadow_base,
                        shadow_size,
                        dump_ns,
                    };
                }
                REC_SIGNALS => {
                    let blocked = b.u64()?;
                    let mut timers = [(0, 0); 3];
                    for t in &mut timers {
                        *t = (b.u64()?, b.u64()?);
                    }
                    let n = b.count(24)?;
                    let pending = b.u32()?;
                    let mut actions = Vec::with_capacity(n);
                    for _ in 0..n {
                        actions.push(SigAction {
                            signo: b.u32()?,
                            flags: b.u32()?,
                            handler: b.u64()?,
                            mask: b.u64()?,
                        });
                    }
                    let altstack = (b.u64()?, b.u64()?);
                    img.signals = Signals {
                        blocked,
                        timers,
                        pending,
                        actions,
                        altstack,
                    };
                }
                REC_MEMORY if snapshot => {
                    let n = b.u32()? as usize;
                    b.u32()?;
                    let path = String::from_utf8_lossy(b.bytes(n)?).into_owned();
                    let bytes = memory.ok_or_else(|| {
                        b.invalid_at(
                            start,
                            &format!("its memory is in {path}, which was not read (it is the dump a migration made; it is gone once the migration is over)"),
                        )
                    })?;
                    img.memory = Some(MemoryFile { path, bytes });
                }
                REC_FRAMES => {
                    let n = b.count(16)?;
                    b.u32()?;
                    for _ in 0..n {
                        let function = b.u64()?;
                        let site = b.u32()?;
                        let size = b.u32()? as usize;
                        img.frames.push(Frame {
                            function,
                            site,
                            values: b.bytes(size)?.to_vec(),
                        });
                    }
                }
                _ => return Err(r.invalid_at(start, &format!("unknown record kind {kind}"))),
            }
        }
        if !ended {
            return Err(DecodeError::Truncated {
                what,
                offset: data.len(),
                needed: 16,
                available: 0,
            });
        }
        if !snapshot && img.regs.is_none() {
            return Err(r.invalid("dump has no register record"));
        }
        if snapshot && img.frames.is_empty() {
            return Err(r.invalid("snapshot has no frames"));
        }
        Ok(img)
    }

    /// Encodes as a snapshot (frames, no registers) or a dump.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_to(&mut v)
            .expect("writing to a Vec cannot fail");
        v
    }

    /// Encodes into `out`, writing each region's memory straight from its
    /// slice (no copy of hundreds of MiB into an intermediate buffer), or,
    /// when `memory` is set and holds the data, only where it is there.
    pub fn encode_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut w = Writer::new();
        w.bytes(if self.snapshot {
            SNAP_MAGIC
        } else {
            DUMP_MAGIC
        });
        w.u32(if self.snapshot {
            SNAP_VERSION
        } else {
            DUMP_VERSION
        });
        w.u32(self.isa as u32);
        w.bytes(&self.build_id);
        let record = |w: &mut Writer, kind: u32, body: &dyn Fn(&mut Writer)| {
            w.u32(kind);
            w.u32(0);
            let at = w.len();
            w.u64(0);
            let start = w.len();
            body(w);
            let len = (w.len() - start) as u64;
            w.patch_u64(at, len);
            w.pad_to(8);
        };
        if let Some(r) = &self.regs {
            record(&mut w, REC_REGS, &|w| {
                for g in r.gpr {
                    w.u64(g);
                }
                w.u64(r.pc);
                w.u64(r.sp);
                for v in &r.vec {
                    w.bytes(v);
                }
            });
        }
        if let (true, Some(m)) = (self.snapshot, &self.memory) {
            record(&mut w, REC_MEMORY, &|w| {
                w.u32(m.path.len() as u32);
                w.u32(0);
                w.bytes(m.path.as_bytes());
            });
        }
        let mut written = 0usize;
        for reg in &self.regions {
            let in_memory = self.memory_offset(reg.data);
            // Large memory starts on a page of the file, so restore can map
            // it instead of copying (`hcrt.c`, restore_region). Record
            // boundaries are 8-aligned, so flushing here keeps the buffer's
            // alignment arithmetic right.
            let data_at = written + w.len() + 16 + 40;
            let skip = if in_memory.is_none()
                && self.snapshot
                && reg.data.len() >= MAP_THRESHOLD
                && reg.addr % 4096 == 0
            {
                (4096 - data_at % 4096) % 4096
            } else {
                0
            };
            let (source, payload) = match in_memory {
                Some(_) => (SOURCE_MEMORY, 8),
                None => (SOURCE_INLINE, skip + reg.data.len()),
            };
            w.u32(REC_REGION);
            w.u32(0);
            w.u64((40 + payload) as u64);
            w.u64(reg.addr);
            w.u64(reg.map_len);
            w.u64(reg.data.len() as u64);
            w.u32(reg.prot);
            w.u32(reg.kind as u32);
            w.u32(skip as u32);
            w.u32(source);
            if let Some(off) = in_memory {
                w.u64(off as u64);
                continue;
            }
            w.buf.resize(w.len() + skip, 0);
            written += w.len();
            out.write_all(&std::mem::take(&mut w.buf))?;
            out.write_all(reg.data)?;
            let pad = (8 - reg.data.len() % 8) % 8;
            out.write_all(&[0u8; 8][..pad])?;
            written += reg.data.len() + pad;
        }
        if let Some((addr, bytes)) = self.tls {
            record(&mut w, REC_TLS, &|w| {
                w.u64(addr);
                w.u64(bytes.len() as u64);
                w.bytes(bytes);
            });
        }
        record(&mut w, REC_FDS, &|w| {
            w.u32(self.fds.len() as u32);
            w.u32(0);
            for f in &self.fds {
                w.i32(f.fd);
                w.i32(f.flags);
                w.i32(f.fdflags);
                w.u32(f.mode);
                w.i64(f.offset);
                w.u64(f.dev);
                w.u64(f.ino);
                w.u32(f.path.len() as u32);
                w.u32(f.shares.map_or(0, |fd| fd as u32 + 1));
                w.u32(f.locks);
                w.u32(0);
                w.bytes(f.path.as_bytes());
                w.pad_to(8);
            }
        });
        let m = &self.misc;
        record(&mut w, REC_MISC, &|w| {
            w.i32(m.errno);
            w.u32(m.umask);
            for v in [
                m.argv_start,
                m.stack_end,
                m.shadow_base,
                m.shadow_size,
                m.dump_ns,
            ] {
                w.u64(v);
            }
            w.u32(m.cwd.len() as u32);
            w.u32(0);
            w.bytes(m.cwd.as_bytes());
            w.pad_to(8);
            w.u64(m.thread_locale);
            for c in 0..6 {
                let mut name = [0u8; 24];
                let n = m.locale.get(c).map_or(&[][..], |s| s.as_bytes());
                name[..n.len().min(23)].copy_from_slice(&n[..n.len().min(23)]);
                w.bytes(&name);
            }
            for r in 0..16 {
                let (soft, hard) = m.rlimits.get(r).copied().unwrap_or((0, 0));
                w.u64(soft);
                w.u64(hard);
            }
            let mut name = [0u8; 16];
            let n = &m.name.as_bytes()[..m.name.len().min(15)];
            name[..n.len()].copy_from_slice(n);
            w.bytes(&name);
            w.u64(m.cpu_ns.0);
            w.u64(m.cpu_ns.1);
            for v in m.uid.iter().chain(&m.gid) {
                w.u32(*v);
            }
            let groups = &m.groups[..m.groups.len().min(32)];
            w.u32(groups.len() as u32);
            w.u32(m.no_new_privs as u32);
            for i in 0..32 {
                w.u32(groups.get(i).copied().unwrap_or(0));
            }
            let a = &m.attrs;
            w.u32(a.known);
            w.u32(a.nice as u32);
            w.u32(a.sched_policy);
            w.u32(a.sched_priority);
            w.u32(a.pdeathsig as u32);
            w.u32(a.dumpable);
            w.u32(a.subreaper);
            w.u32(a.oom_score_adj as u32);
            w.u64(a.timerslack_ns);
            for v in a.affinity {
                w.u64(v);
            }
            w.u32(a.session_leader as u32);
            w.u32(0);
        });
        let sg = &self.signals;
        record(&mut w, REC_SIGNALS, &|w| {
            w.u64(sg.blocked);
            for (interval, value) in sg.timers {
                w.u64(interval);
                w.u64(value);
            }
            w.u32(sg.actions.len() as u32);
            w.u32(sg.pending);
            for a in &sg.actions {
                w.u32(a.signo);
                w.u32(a.flags);
                w.u64(a.handler);
                w.u64(a.mask);
            }
            w.u64(sg.altstack.0);
            w.u64(sg.altstack.1);
        });
        if self.snapshot {
            record(&mut w, REC_FRAMES, &|w| {
                w.u32(self.frames.len() as u32);
                w.u32(0);
                for f in &self.frames {
                    w.u64(f.function);
                    w.u32(f.site);
                    w.u32(f.values.len() as u32);
                    w.bytes(&f.values);
                }
            });
        }
        record(&mut w, REC_END, &|_| {});
        out.write_all(&w.buf)
    }

    /// Where `data` is in the memory file, if this snapshot has one and the
    /// data lies inside it.
    fn memory_offset(&self, data: &[u8]) -> Option<usize> {
        let m = self.memory.as_ref().filter(|_| self.snapshot)?;
        let base = m.bytes.as_ptr() as usize;
        let at = (data.as_ptr() as usize).checked_sub(base)?;
        (at + data.len() <= m.bytes.len()).then_some(at)
    }
}
