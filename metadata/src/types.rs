//! Types of live values at a site, and the canonical frame-record layout that
//! hcc (resume paths), hld (metadata) and the rewriter (snapshots) all share.

/// The type of one live value. Codes are part of the on-disk formats.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize)]
#[repr(u8)]
pub enum ValueType {
    I1 = 1,
    I8 = 2,
    I16 = 3,
    I32 = 4,
    I64 = 5,
    Ptr = 6,
    F32 = 7,
    F64 = 8,
    /// Any 128-bit vector (`<4 x float>`, `<2 x i64>`, `<16 x i8>`, ...).
    V128 = 9,
    /// Any 64-bit vector (`<2 x float>`, `<2 x i32>`, ...).
    V64 = 10,
    /// The low and high words of a `long double`. In a snapshot both ISAs'
    /// values are IEEE binary128 (aarch64's own format); a dump from an ISA
    /// whose `long double` is x87 extended (`IsaInfo::long_double`) holds the
    /// 80 bits as they are, and the rewriter converts them (exactly).
    LongDoubleLo = 11,
    LongDoubleHi = 12,
    /// A `va_list` object of the frame, in the "everything on the stack"
    /// form (`IsaInfo::va_list`). In a dump: the object's address (each ISA
    /// lays it out its own way); in a snapshot: the address of the next
    /// argument, or 0 when the object holds no such form (not yet started).
    /// The resume path writes the destination's form back at the address.
    VaList = 13,
}

impl ValueType {
    pub fn from_u8(v: u8) -> Option<ValueType> {
        use ValueType::*;
        [
            I1,
            I8,
            I16,
            I32,
            I64,
            Ptr,
            F32,
            F64,
            V128,
            V64,
            LongDoubleLo,
            LongDoubleHi,
            VaList,
        ]
        .into_iter()
        .find(|t| *t as u8 == v)
    }

    /// Bytes of the value itself.
    pub fn size(self) -> usize {
        use ValueType::*;
        match self {
            I1 | I8 => 1,
            I16 => 2,
            I32 | F32 => 4,
            I64 | Ptr | F64 | V64 | LongDoubleLo | LongDoubleHi | VaList => 8,
            V128 => 16,
        }
    }

    /// Bytes the value occupies in a frame record: values sit in 8-byte slots
    /// (16 for 128-bit vectors), low bytes first, the rest zero.
    pub fn slot_size(self) -> usize {
        self.size().max(8)
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            I1 => "i1",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            Ptr => "ptr",
            F32 => "float",
            F64 => "double",
            V128 => "v128",
            V64 => "v64",
            LongDoubleLo => "long double (low)",
            LongDoubleHi => "long double (high)",
            VaList => "va_list",
        }
    }
}

/// How an ISA's `long double` is laid out in its two record words.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LongDouble {
    /// IEEE binary128, the snapshot's format.
    Quad,
    /// x87 80-bit extended: the 64-bit significand (explicit integer bit),
    /// then sign and 15-bit exponent.
    X87,
}

/// An x87 extended value (`lo`: significand, `hi`: sign and exponent in its
/// low 16 bits) as IEEE binary128 words (low, high). Exact: both formats have
/// a 15-bit exponent with the same bias, and binary128 a longer fraction.
pub fn x87_to_quad(lo: u64, hi: u64) -> (u64, u64) {
    let sign = (hi >> 15) & 1;
    let mut exp = hi & 0x7fff;
    let integer_bit = lo >> 63;
    // Pseudo-denormals (exponent 0 with the integer bit set) mean the
    // smallest normal exponent.
    if exp == 0 && integer_bit == 1 {
        exp = 1;
    }
    // The 63 fraction bits below the integer bit, at the top of 112.
    let fraction = u128::from(lo & !(1 << 63)) << 49;
    let high = (sign << 63) | (exp << 48) | (fraction >> 64) as u64;
    (fraction as u64, high)
}

/// Byte offsets of each value in a frame record, and the record's total size.
pub fn record_layout(types: &[ValueType]) -> (Vec<usize>, usize) {
    let mut off = 0;
    let offsets = types
        .iter()
        .map(|t| {
            let o = off;
            off += t.slot_size();
            o
        })
        .collect();
    (offsets, off)
}
