//! How a live value of any carriable IR type travels in a frame record: as
//! one or more pieces, each of a record type (`ValueType`).
//!
//! Scalars and 64/128-bit vectors are one piece as they are. Everything else
//! optimized C code keeps live is rewritten, the same way on every ISA:
//! - integers of odd width (`i4`, `i48`) and values of at most 64 bits that
//!   are not scalars (`<4 x i1>`, `<4 x i8>`, `half`) are bit-cast to an
//!   integer and zero-extended to the next record integer;
//! - integers and vectors of a multiple of 64 bits (`i128`, `<8 x i32>`,
//!   `<16 x ptr>`) are cut into 64-bit words (pointers through `ptrtoint`);
//! - structs and arrays (`[2 x i64]`, `{ ptr, i32 }`) are carried element by
//!   element.
//!
//! - `long double` (x86_fp80 on x86_64, fp128 on aarch64) is two 64-bit
//!   words of record types `LongDoubleLo`/`LongDoubleHi`: captured as the
//!   ISA holds it (80 bits zero-extended, or binary128), restored from
//!   binary128, which a snapshot always holds (the rewriter converts x87
//!   values; x86_64's resume path narrows with `fptrunc`, exact for values
//!   that came from x87).
//!
//! Bit-casts are little-endian on both ISAs, so a value's pieces have the
//! same bytes on each.

use crate::ir::{Builder, Ctx, Ty, Val};
use hc_metadata::types::ValueType;
use inkwell::llvm_sys::LLVMTypeKind;

use super::value_type;

/// Most pieces one value may take; bigger values are not carried (an
/// aggregate that large lives in memory in practice, not in registers).
const MAX_PIECES: usize = 16;

/// How one level of a type is carried.
enum Form {
    /// One piece as it is.
    Direct,
    /// Bit-cast to the integer `bits`, then zero-extended to the piece `piece`.
    Bits { bits: Ty, piece: Ty },
    /// `n` 64-bit words of a `<n x i64>` bit-cast; `ptrs`: a vector of
    /// pointers, converted to `<len x i64>` first.
    Words { n: u32, ptrs: bool },
    /// Element by element.
    Aggregate(Vec<Ty>),
    /// Two words of a `long double` (`x86_fp80` or `fp128`).
    LongDouble,
}

fn bits_of(ty: Ty) -> Option<u64> {
    use LLVMTypeKind::*;
    Some(match ty.kind() {
        LLVMIntegerTypeKind => u64::from(ty.int_width()),
        LLVMHalfTypeKind | LLVMBFloatTypeKind => 16,
        LLVMFloatTypeKind => 32,
        LLVMDoubleTypeKind | LLVMPointerTypeKind => 64,
        _ => return None,
    })
}

/// Bits of a `long double` type's value (x87's 80 or binary128's 128).
fn bits_of_long_double(ty: Ty) -> u32 {
    if ty.kind() == LLVMTypeKind::LLVMX86_FP80TypeKind {
        80
    } else {
        128
    }
}

fn form(cx: &Ctx, ty: Ty) -> Option<Form> {
    use LLVMTypeKind::*;
    if value_type(ty).is_some() {
        return Some(Form::Direct);
    }
    let total = match ty.kind() {
        LLVMX86_FP80TypeKind | LLVMFP128TypeKind => return Some(Form::LongDouble),
        LLVMStructTypeKind => return Some(Form::Aggregate(ty.struct_elements())),
        LLVMArrayTypeKind => {
            let n = ty.array_len();
            if n as usize > MAX_PIECES {
                return None;
            }
            return Some(Form::Aggregate(vec![ty.element(); n as usize]));
        }
        LLVMVectorTypeKind => bits_of(ty.element())? * u64::from(ty.vector_len()),
        LLVMIntegerTypeKind | LLVMHalfTypeKind | LLVMBFloatTypeKind => bits_of(ty)?,
        _ => return None,
    };
    let ptrs = ty.kind() == LLVMVectorTypeKind && ty.element().kind() == LLVMPointerTypeKind;
    if total % 64 == 0 {
        return Some(Form::Words {
            n: (total / 64) as u32,
            ptrs,
        });
    }
    if total < 64 && !ptrs {
        let piece = (total as u32).next_power_of_two().max(8);
        return Some(Form::Bits {
            bits: cx.int(total as u32),
            piece: cx.int(piece),
        });
    }
    None
}

/// The record types of the pieces of a value of type `ty`.
pub fn record_types(cx: &Ctx, ty: Ty) -> Option<Vec<ValueType>> {
    Some(pieces(cx, ty)?.into_iter().map(|(_, r)| r).collect())
}

/// Each piece's IR type and record type, in record order; None if a value
/// of type `ty` cannot be carried.
pub fn pieces(cx: &Ctx, ty: Ty) -> Option<Vec<(Ty, ValueType)>> {
    let mut out = Vec::new();
    collect(cx, ty, &mut out)?;
    Some(out)
}

fn collect(cx: &Ctx, ty: Ty, out: &mut Vec<(Ty, ValueType)>) -> Option<()> {
    let word = |t: Ty| Some((t, value_type(t)?));
    match form(cx, ty)? {
        Form::Direct => out.push(word(ty)?),
        Form::Bits { piece, .. } => out.push(word(piece)?),
        Form::Words { n, .. } => {
            out.extend(std::iter::repeat_n((cx.i64(), ValueType::I64), n as usize))
        }
        Form::LongDouble => out.extend([
            (cx.i64(), ValueType::LongDoubleLo),
            (cx.i64(), ValueType::LongDoubleHi),
        ]),
        Form::Aggregate(elems) => {
            for e in elems {
                collect(cx, e, out)?;
            }
        }
    }
    (out.len() <= MAX_PIECES).then_some(())
}

/// The record type of an argument's piece. Each ISA's ABI passes small
/// structs its own way (`{ ptr, i32 }` on x86_64 is `[2 x i64]` on aarch64),
/// so integer and pointer pieces of arguments are described as 64-bit words:
/// the bits below the piece's own width are the value on both ISAs, the bits
/// above are padding of the struct or ignored (the restore code loads only
/// its own width from the little-endian slot). The code is unchanged; only
/// the description the ISAs must agree on is.
pub fn argument_word(t: ValueType) -> ValueType {
    match t {
        ValueType::I8 | ValueType::I16 | ValueType::I32 | ValueType::Ptr => ValueType::I64,
        t => t,
    }
}

/// The pieces of `v`, built at the builder's position.
pub fn split(cx: &Ctx, b: &Builder, v: Val) -> Vec<Val> {
    let mut out = Vec::new();
    split_into(cx, b, v, &mut out);
    out
}

fn split_into(cx: &Ctx, b: &Builder, v: Val, out: &mut Vec<Val>) {
    match form(cx, v.ty()).expect("carried values have pieces") {
        Form::Direct => out.push(v),
        Form::Bits { bits, piece } => {
            let x = b.bitcast(v, bits, "hc.bits");
            out.push(b.zext(x, piece, "hc.piece"));
        }
        Form::Words { n, ptrs } => {
            let i64t = cx.i64();
            let mut x = v;
            if ptrs {
                x = b.ptr_to_int(x, cx.vector(i64t, v.ty().vector_len()), "hc.words");
            }
            let words = b.bitcast(x, cx.vector(i64t, n), "hc.words");
            for i in 0..n {
                let idx = cx.const_int(cx.i32(), u64::from(i));
                out.push(b.extract_element(words, idx, "hc.piece"));
            }
        }
        Form::LongDouble => {
            let i64t = cx.i64();
            let bits = b.bitcast(v, cx.int(bits_of_long_double(v.ty())), "hc.bits");
            let x = b.zext(bits, cx.int(128), "hc.bits");
            let words = b.bitcast(x, cx.vector(i64t, 2), "hc.words");
            for i in 0..2 {
                let idx = cx.const_int(cx.i32(), i);
                out.push(b.extract_element(words, idx, "hc.piece"));
            }
        }
        Form::Aggregate(elems) => {
            for i in 0..elems.len() as u32 {
                let e = b.extract_value(v, i, "hc.elem");
                split_into(cx, b, e, out);
            }
        }
    }
}

/// Rebuilds a value of type `ty` from its pieces (taken from the front of
/// `pieces`), at the builder's position.
pub fn join(cx: &Ctx, b: &Builder, ty: Ty, pieces: &mut impl Iterator<Item = Val>) -> Val {
    fn next(pieces: &mut impl Iterator<Item = Val>) -> Val {
        pieces.next().expect("one piece per piece type")
    }
    match form(cx, ty).expect("carried values have pieces") {
        Form::Direct => next(pieces),
        Form::Bits { bits, .. } => {
            let x = b.trunc(next(pieces), bits, "hc.bits");
            b.bitcast(x, ty, "hc.value")
        }
        Form::Words { n, ptrs } => {
            let i64t = cx.i64();
            let mut words = cx.poison(cx.vector(i64t, n));
            for i in 0..n {
                let idx = cx.const_int(cx.i32(), u64::from(i));
                words = b.insert_element(words, next(pieces), idx, "hc.words");
            }
            if ptrs {
                let ints = b.bitcast(words, cx.vector(i64t, ty.vector_len()), "hc.words");
                b.int_to_ptr(ints, ty, "hc.value")
            } else {
                b.bitcast(words, ty, "hc.value")
            }
        }
        Form::LongDouble => {
            let i64t = cx.i64();
            let mut words = cx.poison(cx.vector(i64t, 2));
            for i in 0..2 {
                let idx = cx.const_int(cx.i32(), i);
                words = b.insert_element(words, next(pieces), idx, "hc.words");
            }
            let x = b.bitcast(words, cx.int(128), "hc.bits");
            let quad = b.bitcast(x, cx.fp128(), "hc.value");
            if ty.kind() == LLVMTypeKind::LLVMFP128TypeKind {
                quad
            } else {
                b.fptrunc(quad, ty, "hc.value")
            }
        }
        Form::Aggregate(elems) => {
            let mut agg = cx.poison(ty);
            for (i, e) in elems.into_iter().enumerate() {
                let x = join(cx, b, e, pieces);
                agg = b.insert_value(agg, x, i as u32, "hc.agg");
            }
            agg
        }
    }
}
