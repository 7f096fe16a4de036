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
    qemu: "qemu-x86_64",
    dwarf_sp: 7,
    dwarf_fp: 6,
    dwarf_ra: 16,
    dwarf_arg0: 5, // rdi
    dwarf_vec_base: 17,
    vec_count: 16,
    return_address_on_stack: true,
    long_double: LongDouble::X87,
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
    qemu: "qemu-aarch64",
    dwarf_sp: 31,
    dwarf_fp: 29,
    dwarf_ra: 30,
    dwarf_arg0: 0, // x0
    dwarf_vec_base: 64,
    vec_count: 32,
    return_address_on_stack: false,
    long_double: LongDouble::Quad,
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
