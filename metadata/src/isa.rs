//! Per-ISA facts, in one table. Everything that differs between ISAs and is
//! needed by more than one tool lives here; the ISA is a run-time value because
//! every tool handles images of ISAs other than the host's.

use crate::types::LongDouble;
use std::fmt;
use std::str::FromStr;

/// An instruction set architecture hcontainer builds variants for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum Isa {
    X86_64 = 1,
    Aarch64 = 2,
}

/// Static description of one ISA.
#[derive(Debug)]
pub struct IsaInfo {
    pub isa: Isa,
    /// Name used on command lines and in section names (`x86_64`, `aarch64`).
    pub name: &'static str,
    /// Clang target triple for the musl environment.
    pub triple: &'static str,
    /// LLVM CPU name used for code generation (matches clang's default).
    pub cpu: &'static str,
    /// LLVM target features used for code generation (matches clang's default).
    pub features: &'static str,
    /// LLVM tuning CPU (clang's "tune-cpu" attribute).
    pub tune_cpu: &'static str,
    /// `e_machine` of the ELF files of this ISA.
    pub elf_machine: u16,
    /// Debian's multiarch directory name for musl (`/usr/lib/<dir>`, `/usr/include/<dir>`).
    pub musl_dir: &'static str,
    /// libgcc.a for this ISA (compiler runtime helpers musl expects).
    pub libgcc: &'static str,
    /// The Linux kernel's user-space headers (`<linux/...>`, `<asm/...>`)
    /// for this ISA: the directory holding `linux/`, `asm-generic/` and the
    /// rest, and this ISA's `asm/` (Debian's linux-libc-dev, and its
    /// arm64 cross package).
    pub kernel_headers: (&'static str, &'static str),
    /// clang's alignment of a variable of array type this large or larger
    /// (bytes, bytes), if it has such a rule: hcc gives every ISA's rule to
    /// every variant, so their optimizers see the same alignments.
    pub large_array_align: Option<(u64, u32)>,
    /// qemu-user binary that runs this ISA on a host of another ISA.
    pub qemu: &'static str,
    /// DWARF register number of the stack pointer.
    pub dwarf_sp: u16,
    /// DWARF register number of the frame pointer.
    pub dwarf_fp: u16,
    /// DWARF register number of the return-address column in CFI.
    pub dwarf_ra: u16,
    /// DWARF register number of the first integer argument register.
    pub dwarf_arg0: u16,
    /// First DWARF register number of the 128-bit vector registers, and their count.
    pub dwarf_vec_base: u16,
    pub vec_count: u16,
    /// Whether the return address is pushed on the stack by `call` (x86) rather
    /// than kept in a link register (aarch64).
    pub return_address_on_stack: bool,
    /// The format of C's `long double` in registers and frame records.
    pub long_double: LongDouble,
    /// How C's `va_list` is laid out.
    pub va_list: VaListAbi,
    /// The no-op instruction a poll is in the code that runs (assembler
    /// text, its encoding spelled out): the runtime patches it into a jump
    /// to the poll's slow path while a migration is requested (FORMATS §5, "Polls").
    pub poll_nop: &'static str,
    /// How a function's entry becomes a jump to its resume copy while a
    /// migration is requested (FORMATS §5 "Entries"), instead of an entry
    /// poll the code runs.
    pub entry_redirect: EntryRedirect,
    /// How an embedded executable of this ISA is packed (FORMATS §3,
    /// "packed variant"): xz's branch converter for its code and the
    /// alignment of its instructions.
    pub packing: Packing,
}

/// xz's branch/call/jump converter for one ISA's code: it turns relative
/// branch targets into absolute ones, so the calls to one function repeat
/// byte for byte and compress (sqlite3's aarch64 variant: 2.05 MB with
/// LZMA2 alone, 1.87 MB with the converter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BranchConverter {
    X86,
    Arm64,
}

/// How `meta::pack_variant` packs an executable of one ISA.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Packing {
    pub converter: BranchConverter,
    /// log2 of the instructions' size when they all have one (aarch64: 2),
    /// else 0: LZMA2 then models each byte by its place in an instruction
    /// (Lua's aarch64 variant 1.5% smaller).
    pub instruction_size_log2: u32,
}

/// The ways a function's entry is redirected (see `IsaInfo::entry_redirect`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntryRedirect {
    /// The first instruction is replaced by a branch to the copy in one
    /// aligned store (fixed-size instructions: aarch64 `b`); the prefix is
    /// zeros.
    Branch,
    /// The function is preceded by `jmp rel32` to its copy (the prefix's
    /// last five bytes), and its first instruction, made at least two bytes
    /// long ("prologue-short-redirect"), is replaced by a two-byte jump back
    /// to it in one store (x86_64 `eb f9`, as hot-patchable Windows code).
    PrefixJump,
}

/// The section listing each variant's polls (FORMATS §5 "Polls"): hcc
/// writes it, hld places it per variant, the runtime finds it by lld's
/// `__start___hc_polls` / `__stop___hc_polls`.
pub const POLL_SECTION: &str = "__hc_polls";

/// The section listing each variant's redirected function entries
/// (FORMATS §5 "Entries"), found like the polls.
pub const ENTRY_SECTION: &str = "__hc_entries";

/// The section listing each variant's label tables (FORMATS §5 "Label
/// tables"), found like the polls.
pub const TABLE_SECTION: &str = "__hc_tables";

/// Prefix of the sections of writable data that every variant has and
/// keeps for itself (the label tables the runtime swaps: they hold its own
/// code addresses); hld puts them in the arch-local region.
pub const LOCAL_DATA_PREFIX: &str = ".data.hc.local.";

/// Bytes of prefix data before a redirected function's entry, alike on
/// every ISA so the function keeps one address in every variant.
pub const ENTRY_PREFIX: u64 = 8;

/// One field of a `va_list` object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VaField {
    I32,
    Ptr,
}

/// C's `va_list` on one ISA, and its **everything on the stack** form: a
/// `va_list` whose register save areas are used up reads every further
/// argument from one pointer onward, 8 bytes per `int`, `long`, pointer or
/// `double` — the same on every ISA here. hcc passes the arguments of the
/// program's own variadic calls that way (an area on the shadow stack), so a
/// `va_list` in that form is one pointer on any ISA (DESIGN-NOTES
/// "Variadic functions").
#[derive(Debug)]
pub struct VaListAbi {
    /// The object's fields in order, naturally aligned.
    pub fields: &'static [VaField],
    /// Whether clang's IR type wraps the struct in a one-element array
    /// (x86_64: `va_list` is an array, so it is passed as a pointer).
    pub in_array: bool,
    /// The field pointing to the next argument passed on the stack.
    pub next_stack_arg: usize,
    /// (field, value) of the `int` register-area offsets: at `value` or above,
    /// that area is used up.
    pub regs_used_up: &'static [(usize, i32)],
}

impl VaListAbi {
    /// Byte offset of each field.
    pub fn offsets(&self) -> Vec<u64> {
        let mut off = 0u64;
        self.fields
            .iter()
            .map(|f| {
                let size = self.field_size(*f);
                off = off.div_ceil(size) * size;
                let o = off;
                off += size;
                o
            })
            .collect()
    }

    fn field_size(&self, f: VaField) -> u64 {
        match f {
            VaField::I32 => 4,
            VaField::Ptr => 8,
        }
    }

    /// The object's size.
    pub fn size(&self) -> u64 {
        let last = self.fields.len() - 1;
        (self.offsets()[last] + self.field_size(self.fields[last])).div_ceil(8) * 8
    }

    /// The type as `hcc` spells IR types structurally (`frame::shape`).
    pub fn ir_type(&self) -> String {
        let body: Vec<&str> = self
            .fields
            .iter()
            .map(|f| match f {
                VaField::I32 => "i32",
                VaField::Ptr => "ptr",
            })
            .collect();
        let s = format!("{{{}}}", body.join(","));
        if self.in_array {
            format!("[1 x {s}]")
        } else {
            s
        }
    }

    /// The next stack argument's address of a `va_list` in the everything on
    /// the stack form; `None` when `bytes` (the object) is not in that form.
    pub fn next_arg(&self, bytes: &[u8]) -> Option<u64> {
        let offsets = self.offsets();
        let at = |o: u64, n: usize| bytes.get(o as usize..o as usize + n);
        for &(field, min) in self.regs_used_up {
            let v = i32::from_le_bytes(at(offsets[field], 4)?.try_into().ok()?);
            if v < min {
                return None;
            }
        }
        let p = at(offsets[self.next_stack_arg], 8)?;
        Some(u64::from_le_bytes(p.try_into().ok()?))
    }

    /// The object in the everything on the stack form for `next_arg`.
    pub fn encode(&self, next_arg: u64) -> Vec<u8> {
        let offsets = self.offsets();
        let mut out = vec![0u8; self.size() as usize];
        for &(field, min) in self.regs_used_up {
            let o = offsets[field] as usize;
            out[o..o + 4].copy_from_slice(&min.to_le_bytes());
        }
        let o = offsets[self.next_stack_arg] as usize;
        out[o..o + 8].copy_from_slice(&next_arg.to_le_bytes());
        out
    }
}

pub const X86_64: IsaInfo = IsaInfo {
    isa: Isa::X86_64,
    name: "x86_64",
    triple: "x86_64-linux-musl",
    cpu: "x86-64",
    features: "+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+x87",
    tune_cpu: "generic",
    elf_machine: 62, // EM_X86_64
    musl_dir: "x86_64-linux-musl",
    libgcc: "/usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a",
    kernel_headers: ("/usr/include", "/usr/include/x86_64-linux-gnu/asm"),
    // TargetInfo's LargeArrayMinWidth/LargeArrayAlign: 128 bits each.
    large_array_align: Some((16, 16)),
    qemu: "qemu-x86_64",
    dwarf_sp: 7,
    dwarf_fp: 6,
    dwarf_ra: 16,
    dwarf_arg0: 5, // rdi
    dwarf_vec_base: 17,
    vec_count: 16,
    return_address_on_stack: true,
    long_double: LongDouble::X87,
    // nopl 0(%rax,%rax,1): as long as the `jmp rel32` that replaces it.
    poll_nop: ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
    entry_redirect: EntryRedirect::PrefixJump,
    packing: Packing {
        converter: BranchConverter::X86,
        instruction_size_log2: 0,
    },
    // { gp_offset, fp_offset, overflow_arg_area, reg_save_area }: six
    // integer registers (48 bytes), then eight vector registers (to 176).
    va_list: VaListAbi {
        fields: &[VaField::I32, VaField::I32, VaField::Ptr, VaField::Ptr],
        in_array: true,
        next_stack_arg: 2,
        regs_used_up: &[(0, 48), (1, 176)],
    },
};

pub const AARCH64: IsaInfo = IsaInfo {
    isa: Isa::Aarch64,
    name: "aarch64",
    triple: "aarch64-linux-musl",
    cpu: "generic",
    features: "+fp-armv8,+neon,+v8a,-fmv",
    tune_cpu: "generic",
    elf_machine: 183, // EM_AARCH64
    musl_dir: "aarch64-linux-musl",
    libgcc: "/usr/lib/gcc-cross/aarch64-linux-gnu/12/libgcc.a",
    kernel_headers: (
        "/usr/aarch64-linux-gnu/include",
        "/usr/aarch64-linux-gnu/include/asm",
    ),
    large_array_align: None,
    qemu: "qemu-aarch64",
    dwarf_sp: 31,
    dwarf_fp: 29,
    dwarf_ra: 30,
    dwarf_arg0: 0, // x0
    dwarf_vec_base: 64,
    vec_count: 32,
    return_address_on_stack: false,
    long_double: LongDouble::Quad,
    // nop (d503201f): `b` replaces it.
    poll_nop: ".inst 0xd503201f",
    entry_redirect: EntryRedirect::Branch,
    packing: Packing {
        converter: BranchConverter::Arm64,
        instruction_size_log2: 2,
    },
    // { __stack, __gr_top, __vr_top, __gr_offs, __vr_offs }: the offsets
    // count up from minus the areas' sizes to 0.
    va_list: VaListAbi {
        fields: &[
            VaField::Ptr,
            VaField::Ptr,
            VaField::Ptr,
            VaField::I32,
            VaField::I32,
        ],
        in_array: false,
        next_stack_arg: 0,
        regs_used_up: &[(3, 0), (4, 0)],
    },
};

impl Isa {
    /// Every ISA hcontainer builds, in the order variants are stored.
    pub const ALL: [Isa; 2] = [Isa::X86_64, Isa::Aarch64];
    /// The ISA whose variant is the container ELF itself (runs natively on it).
    pub const PRIMARY: Isa = Isa::X86_64;

    pub fn info(self) -> &'static IsaInfo {
        match self {
            Isa::X86_64 => &X86_64,
            Isa::Aarch64 => &AARCH64,
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn from_u32(v: u32) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| *i as u32 == v)
    }

    pub fn from_elf_machine(m: u16) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.info().elf_machine == m)
    }

    /// The ISA of the machine this code runs on.
    pub fn host() -> Option<Isa> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Isa::X86_64),
            "aarch64" => Some(Isa::Aarch64),
            _ => None,
        }
    }

    /// Directory with musl's crt objects and libc.a.
    pub fn musl_lib_dir(self) -> String {
        format!("/usr/lib/{}", self.info().musl_dir)
    }

    /// Directory with musl's headers.
    pub fn musl_include_dir(self) -> String {
        format!("/usr/include/{}", self.info().musl_dir)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Isa, String> {
        match s {
            "x86_64" | "x86-64" | "amd64" => Ok(Isa::X86_64),
            "aarch64" | "arm64" => Ok(Isa::Aarch64),
            _ => Err(format!(
                "unknown ISA '{s}' (supported: {})",
                Isa::ALL.map(|i| i.name()).join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn va_list_layouts_are_the_abis() {
        let x = &X86_64.va_list;
        assert_eq!((x.size(), x.offsets()), (24, vec![0, 4, 8, 16]));
        assert_eq!(x.ir_type(), "[1 x {i32,i32,ptr,ptr}]");
        let a = &AARCH64.va_list;
        assert_eq!((a.size(), a.offsets()), (32, vec![0, 8, 16, 24, 28]));
        assert_eq!(a.ir_type(), "{ptr,ptr,ptr,i32,i32}");
    }

    #[test]
    fn va_list_stack_form_round_trips_and_register_forms_are_refused() {
        for isa in Isa::ALL {
            let v = &isa.info().va_list;
            let bytes = v.encode(0x7f00_1234_5678);
            assert_eq!(v.next_arg(&bytes), Some(0x7f00_1234_5678), "{isa}");
        }
        // x86_64 with two integer registers still unread (gp_offset 32).
        let mut x = X86_64.va_list.encode(0x1000);
        x[0..4].copy_from_slice(&32i32.to_le_bytes());
        assert_eq!(X86_64.va_list.next_arg(&x), None);
        // aarch64 with vector registers still unread (__vr_offs -16).
        let mut a = AARCH64.va_list.encode(0x1000);
        a[28..32].copy_from_slice(&(-16i32).to_le_bytes());
        assert_eq!(AARCH64.va_list.next_arg(&a), None);
    }
}
