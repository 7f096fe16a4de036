//! Types of live values at a site, and the canonical frame-record layout that
//! hcc (resume paths), hld (metadata) and the rewriter (snapshots) all share.

/// The type of one live value. Codes are part of the on-disk formats.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
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
}

impl ValueType {
    pub fn from_u8(v: u8) -> Option<ValueType> {
        use ValueType::*;
        [I1, I8, I16, I32, I64, Ptr, F32, F64, V128, V64]
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
            I64 | Ptr | F64 | V64 => 8,
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
        }
    }
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
