//! Multi-ISA containers are ordinary ELF files of the primary ISA that carry
//! the other variants and the metadata in non-allocated `.hcontainer.*`
//! sections: tools that know nothing of hcontainer (nm, ar, readelf, the
//! kernel) see a normal object or executable.

use object::build::elf::{Builder, SectionData};
use object::elf;
use object::{Object, ObjectSection};

/// Section of an hcc object holding the object of another ISA.
pub fn object_section(isa: crate::Isa) -> String {
    format!(".hcontainer.obj.{}", isa.name())
}

/// Prefix shared by every hcontainer section.
pub const PREFIX: &str = ".hcontainer.";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("not a valid ELF file: {0}")]
    Parse(String),
    #[error("cannot write ELF file: {0}")]
    Write(String),
}

/// Opens an ELF file for rewriting. LLVM's objects keep section names in
/// `.strtab` (shared with symbol names); the writer wants a `.shstrtab`.
fn read(data: &[u8]) -> Result<Builder<'_>, ContainerError> {
    let mut b = Builder::read(data).map_err(|e| ContainerError::Parse(e.to_string()))?;
    if !b
        .sections
        .iter()
        .any(|s| matches!(s.data, SectionData::SectionString))
    {
        let s = b.sections.add();
        s.name = b".shstrtab".to_vec().into();
        s.sh_type = elf::SHT_STRTAB;
        s.sh_addralign = 1;
        s.data = SectionData::SectionString;
    }
    Ok(b)
}

/// Returns `elf` with the given sections added (non-allocated, PROGBITS),
/// replacing sections of the same name.
pub fn add_sections(data: &[u8], sections: &[(&str, &[u8])]) -> Result<Vec<u8>, ContainerError> {
    edit(
        data,
        |name| sections.iter().any(|(n, _)| name == n.as_bytes()),
        sections,
    )
}

/// Returns `elf` without its `.hcontainer.*` sections.
pub fn strip_container_sections(data: &[u8]) -> Result<Vec<u8>, ContainerError> {
    remove_sections(data, |name| name.starts_with(PREFIX.as_bytes()))
}

/// Whether a section holds debug information (plain or compressed).
pub fn is_debug_section(name: &[u8]) -> bool {
    name.starts_with(b".debug") || name.starts_with(b".zdebug")
}

/// Returns `elf` without the sections whose names `drop` selects.
pub fn remove_sections(
    data: &[u8],
    drop: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ContainerError> {
    edit(data, drop, &[])
}

/// Rewrites `elf` without the sections `drop` selects and with `add` appended.
fn edit(
    data: &[u8],
    drop: impl Fn(&[u8]) -> bool,
    add: &[(&str, &[u8])],
) -> Result<Vec<u8>, ContainerError> {
    let mut b = read(data)?;
    for s in b.sections.iter_mut() {
        if drop(s.name.as_slice()) {
            s.delete = true;
        }
    }
    for (name, bytes) in add {
        let s = b.sections.add();
        s.name = name.as_bytes().to_vec().into();
        s.sh_type = elf::SHT_PROGBITS;
        s.sh_flags = 0;
        s.sh_addralign = 8;
        s.data = SectionData::Data(bytes.to_vec().into());
    }
    let mut out = Vec::new();
    b.write(&mut out)
        .map_err(|e| ContainerError::Write(e.to_string()))?;
    Ok(out)
}

/// The contents of section `name`, if present.
pub fn section<'a>(file: &object::File<'a>, name: &str) -> Option<&'a [u8]> {
    file.section_by_name(name).and_then(|s| s.data().ok())
}
