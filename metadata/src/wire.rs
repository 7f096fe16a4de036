//! Little-endian byte encoding shared by every hcontainer format. Readers borrow
//! the input and report the offset of whatever is wrong.

use thiserror::Error;

/// A format could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "{what}: truncated at offset {offset:#x} (needed {needed} more bytes, {available} left)"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{what}: bad magic at offset {offset:#x} (expected {expected:?}, found {found:?}); this is not a {what}")]
    BadMagic {
        what: &'static str,
        offset: usize,
        expected: String,
        found: String,
    },
    #[error("{what}: version {found} is not supported (this build reads version {expected}); rebuild with a matching hcontainer")]
    BadVersion {
        what: &'static str,
        expected: u32,
        found: u32,
    },
    #[error("{what}: {message} at offset {offset:#x}")]
    Invalid {
        what: &'static str,
        offset: usize,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Appends little-endian values to a byte vector.
#[derive(Default, Debug)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A string as u32 length + bytes.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }
    /// Pads with zeros to a multiple of `align`.
    pub fn pad_to(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }
    /// Overwrites a u64 written earlier (for lengths known only later).
    pub fn patch_u64(&mut self, at: usize, v: u64) {
        self.buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// Reads little-endian values from a borrowed byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the format in error messages ("dump", "snapshot", ...).
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }
    pub fn at(data: &'a [u8], pos: usize, what: &'static str) -> Self {
        Reader { data, pos, what }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub fn what(&self) -> &'static str {
        self.what
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn str(&mut self) -> Result<&'a str> {
        let start = self.pos;
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| self.invalid_at(start, "string is not UTF-8"))
    }
    /// A count that is followed by at least `min_item` bytes per item; rejects
    /// counts the remaining input cannot hold, so corrupt input cannot make a
    /// reader allocate without bound.
    pub fn count(&mut self, min_item: usize) -> Result<usize> {
        let start = self.pos;
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(self.invalid_at(
                start,
                &format!(
                    "count {n} exceeds what the remaining {} bytes can hold",
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }
    pub fn skip_to_align(&mut self, align: usize) -> Result<()> {
        let pad = (align - self.pos % align) % align;
        self.bytes(pad).map(|_| ())
    }
    pub fn magic(&mut self, expected: &[u8]) -> Result<()> {
        let offset = self.pos;
        let found = self.bytes(expected.len())?;
        if found != expected {
            return Err(DecodeError::BadMagic {
                what: self.what,
                offset,
                expected: String::from_utf8_lossy(expected).into_owned(),
                found: String::from_utf8_lossy(found).into_owned(),
            });
        }
        Ok(())
    }
    pub fn version(&mut self, expected: u32) -> Result<()> {
        let found = self.u32()?;
        if found != expected {
            return Err(DecodeError::BadVersion {
                what: self.what,
                expected,
                found,
            });
        }
        Ok(())
    }
    pub fn invalid(&self, message: &str) -> DecodeError {
        self.invalid_at(self.pos, message)
    }
    pub fn invalid_at(&self, offset: usize, message: &str) -> DecodeError {
        DecodeError::Invalid {
            what: self.what,
            offset,
            message: message.to_string(),
        }
    }
}
