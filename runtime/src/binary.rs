//! A multi-ISA executable on disk: the primary variant (the file itself),
//! the other variants, and the metadata hld wrote.

use hc_metadata::meta::{self, BinaryMeta};
use hc_metadata::{container, Isa};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not an ELF file ({why})")]
    NotElf { path: PathBuf, why: String },
    #[error("{path}: not a multi-ISA program (no {section} section); build it with hcc")]
    NotMultiIsa {
        path: PathBuf,
        section: &'static str,
    },
    #[error("{path}: damaged metadata: {why}; rebuild it with hcc")]
    BadMeta { path: PathBuf, why: String },
    #[error("{path}: damaged {isa} variant: {why}; rebuild it with hcc")]
    BadVariant {
        path: PathBuf,
        isa: Isa,
        why: String,
    },
    #[error("{path}: has no {isa} variant (it has: {have})")]
    NoVariant {
        path: PathBuf,
        isa: Isa,
        have: String,
    },
}

pub struct Binary {
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub meta: BinaryMeta,
    /// Every variant but the primary (which is `data`), as packed in its
    /// section; inflated on first use (only a run or rewrite there needs it).
    variants: BTreeMap<Isa, Packed>,
}

struct Packed {
    section: Vec<u8>,
    exe: OnceLock<Result<Vec<u8>, String>>,
}

impl Binary {
    pub fn open(path: &Path) -> Result<Binary, BinaryError> {
        let data = std::fs::read(path).map_err(|error| BinaryError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let (meta, variants) = {
            let file = object::File::parse(data.as_slice()).map_err(|e| BinaryError::NotElf {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
            let raw = container::section(&file, meta::SECTION).ok_or(BinaryError::NotMultiIsa {
                path: path.to_path_buf(),
                section: meta::SECTION,
            })?;
            let meta = BinaryMeta::decode(raw).map_err(|e| BinaryError::BadMeta {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
            let mut variants = BTreeMap::new();
            for isa in Isa::ALL {
                if isa == Isa::PRIMARY {
                    continue;
                }
                if let Some(b) = container::section(&file, &meta::variant_section(isa)) {
                    let section = b.to_vec();
                    variants.insert(
                        isa,
                        Packed {
                            section,
                            exe: OnceLock::new(),
                        },
                    );
                }
            }
            (meta, variants)
        };
        Ok(Binary {
            path: path.to_path_buf(),
            data,
            meta,
            variants,
        })
    }

    pub fn isas(&self) -> Vec<Isa> {
        let mut v = vec![Isa::PRIMARY];
        v.extend(self.variants.keys());
        v
    }

    /// The executable bytes of one variant.
    pub fn variant(&self, isa: Isa) -> Result<&[u8], BinaryError> {
        if isa == Isa::PRIMARY {
            return Ok(&self.data);
        }
        let packed = self
            .variants
            .get(&isa)
            .ok_or_else(|| BinaryError::NoVariant {
                path: self.path.clone(),
                isa,
                have: self
                    .isas()
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        packed
            .exe
            .get_or_init(|| meta::unpack_variant(&packed.section).map_err(|e| e.to_string()))
            .as_deref()
            .map_err(|why| BinaryError::BadVariant {
                path: self.path.clone(),
                isa,
                why: why.to_string(),
            })
    }

    /// The program without debug information in any variant: what `strip
    /// --strip-debug` does to a plain executable, which cannot reach the
    /// variants packed inside this one.
    pub fn strip_debug(&self) -> Result<Vec<u8>, BinaryError> {
        let internal = |e: hc_metadata::container::ContainerError| BinaryError::NotElf {
            path: self.path.clone(),
            why: e.to_string(),
        };
        let mut packed = Vec::new();
        for &isa in self.variants.keys() {
            let exe = container::remove_sections(self.variant(isa)?, container::is_debug_section)
                .map_err(internal)?;
            packed.push((meta::variant_section(isa), meta::pack_variant(&exe, isa)));
        }
        let primary = container::remove_sections(&self.data, container::is_debug_section)
            .map_err(internal)?;
        let sections: Vec<(&str, &[u8])> = packed
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        container::add_sections(&primary, &sections).map_err(internal)
    }

    /// A runnable file for one variant: the binary itself for the primary,
    /// otherwise the variant written (plain, without container sections) into `dir`.
    pub fn runnable(&self, isa: Isa, dir: &Path) -> Result<PathBuf, BinaryError> {
        if isa == Isa::PRIMARY {
            return Ok(self.path.clone());
        }
        let bytes = self.variant(isa)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = dir.join(format!("{name}.{}", isa.name()));
        // A file a running variant maps is replaced atomically, never
        // rewritten; one another build left (`run --keep DIR` again after
        // a rebuild) is replaced: restoring with it failed ("snapshot is for
        // another build of this program").
        if std::fs::read(&out).ok().as_deref() != Some(bytes) {
            write_exe(&out, bytes).map_err(|error| BinaryError::Io {
                path: out.clone(),
                error,
            })?;
        }
        Ok(out)
    }
}

/// Writes an executable (mode 755) beside `path` and renames it there: a
/// process running the old file keeps it, and a failure leaves it as it was.
pub fn write_exe(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, path)
}

/// Symbols of one variant: name → addresses (static names may repeat).
pub fn symbols(exe: &[u8]) -> Result<BTreeMap<String, Vec<u64>>, String> {
    let f = object::File::parse(exe).map_err(|e| e.to_string())?;
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in f.symbols() {
        if s.is_undefined() || s.name().map(|n| n.is_empty()).unwrap_or(true) {
            continue;
        }
        if !matches!(
            s.kind(),
            object::SymbolKind::Text | object::SymbolKind::Data | object::SymbolKind::Tls
        ) {
            continue;
        }
        out.entry(s.name().unwrap_or_default().to_string())
            .or_default()
            .push(s.address());
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    Ok(out)
}

/// The function containing `addr` in a variant, for error messages.
pub fn symbolize(exe: &[u8], addr: u64) -> Option<String> {
    let f = object::File::parse(exe).ok()?;
    f.symbols()
        .filter(|s| {
            s.kind() == object::SymbolKind::Text
                && s.address() <= addr
                && addr < s.address() + s.size().max(1)
        })
        .map(|s| format!("{}+{:#x}", s.name().unwrap_or("?"), addr - s.address()))
        .next()
}

/// A section's bytes and address.
pub fn section(exe: &[u8], name: &str) -> Option<(u64, Vec<u8>)> {
    let f = object::File::parse(exe).ok()?;
    let s = f.section_by_name(name)?;
    Some((s.address(), s.data().ok()?.to_vec()))
}
