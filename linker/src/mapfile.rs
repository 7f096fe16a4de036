//! Reads the link maps ld.lld writes with `-Map`: which input sections each
//! variant linked, into which output section, with what size and alignment.
//!
//! ```text
//!              VMA              LMA     Size Align Out     In      Symbol
//!           201000           201000     2d79  4096 .rodata
//!           201000           201000       78     1         in0.o:(.rodata.str1.1)
//!           201000           201000        8     1                 some_symbol
//! ```

/// One input section as placed by the linker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSection {
    /// Output section it went to.
    pub output: String,
    /// The file as lld names it: `path` or `archive(member)`, or `<internal>`.
    pub file: String,
    pub section: String,
    pub addr: u64,
    pub size: u64,
    pub align: u64,
    /// Symbols the section defines, with their addresses.
    pub symbols: Vec<(String, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSection {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    pub align: u64,
}

#[derive(Clone, Debug, Default)]
pub struct LinkMap {
    pub outputs: Vec<OutputSection>,
    pub inputs: Vec<InputSection>,
}

/// Parses a map; lines it does not understand are an error with their number.
pub fn parse(text: &str) -> Result<LinkMap, String> {
    let mut map = LinkMap::default();
    let mut current_out = String::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut rest = line;
        let mut fields = [0u64; 4];
        for (i, f) in fields.iter_mut().enumerate() {
            let t = rest.trim_start();
            let end = t.find(' ').unwrap_or(t.len());
            let tok = &t[..end];
            *f = if i == 3 {
                tok.parse()
            } else {
                u64::from_str_radix(tok, 16)
            }
            .map_err(|_| format!("link map line {}: cannot parse '{line}'", n + 1))?;
            rest = &t[end..];
        }
        let indent = rest.len() - rest.trim_start().len();
        let text = rest.trim();
        if text.is_empty() {
            continue;
        }
        let [addr, _lma, size, align] = fields;
        if indent <= 2 {
            current_out = text.to_string();
            map.outputs.push(OutputSection {
                name: current_out.clone(),
                addr,
                size,
                align,
            });
        } else if indent <= 10 {
            // `file:(section)`; the file itself may contain ':' or '('.
            let Some(split) = text.rfind(":(") else {
                // Linker-script assignments and fill lines.
                continue;
            };
            let file = &text[..split];
            let section = text[split + 2..].trim_end_matches(')');
            map.inputs.push(InputSection {
                output: current_out.clone(),
                file: file.to_string(),
                section: section.to_string(),
                addr,
                size,
                align,
                symbols: Vec::new(),
            });
        } else if let Some(last) = map.inputs.last_mut() {
            if !text.contains(' ')
                && last.output == current_out
                && addr >= last.addr
                && addr <= last.addr + last.size
            {
                last.symbols.push((text.to_string(), addr));
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "             VMA              LMA     Size Align Out     In      Symbol
          201000           201000     2d79  4096 .rodata
          201000           201000       78     1         /tmp/x/in0.o:(.rodata.str1.1)
          201000           201000        8     1                 sym
          203018           203018        8     8         /usr/lib/x86_64-linux-musl/libc.a(block.lo):(.rodata.app_mask)
          211038           211038        8     8 .got
          211038           211038        8     8         <internal>:(.got)
";

    #[test]
    fn parses_outputs_inputs_and_archive_members() {
        let m = parse(MAP).unwrap();
        assert_eq!(m.outputs.len(), 2);
        assert_eq!(m.inputs.len(), 3);
        assert_eq!(m.inputs[0].file, "/tmp/x/in0.o");
        assert_eq!(m.inputs[0].section, ".rodata.str1.1");
        assert_eq!(m.inputs[0].symbols, vec![("sym".to_string(), 0x201000)]);
        assert_eq!(
            m.inputs[1].file,
            "/usr/lib/x86_64-linux-musl/libc.a(block.lo)"
        );
        assert_eq!(m.inputs[1].align, 8);
        assert_eq!(m.inputs[2].output, ".got");
        assert_eq!(m.inputs[2].addr, 0x211038);
    }
}
