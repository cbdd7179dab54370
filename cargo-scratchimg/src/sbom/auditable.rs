//! The binary's own dependency list, in cargo-auditable's format: zlib-compressed JSON in a
//! `.dep-v0` section, which `cargo audit bin`, syft, trivy and grype read from the binary alone.
//!
//! The JSON goes into an object file that the linker adds to the binary, as cargo-auditable
//! does; both are deterministic, so the binary stays reproducible.

use std::io::Write;

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use object::write::{Object, StandardSegment, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};
use serde::Serialize;

use super::crates::{CrateGraph, Kind, Source};
use crate::target::{Arch, Target};

/// The section cargo-auditable defined and scanners look for.
pub(crate) const SECTION: &str = ".dep-v0";
/// The symbol that keeps the section from being garbage-collected by the linker.
pub(crate) const SYMBOL: &str = "AUDITABLE_VERSION_INFO";

/// auditable-serde's `VersionInfo`, field for field.
#[derive(Debug, Serialize)]
struct VersionInfo<'a> {
    packages: Vec<Package<'a>>,
}

#[derive(Debug, Serialize)]
struct Package<'a> {
    name: &'a str,
    version: &'a str,
    source: String,
    #[serde(skip_serializing_if = "is_runtime")]
    kind: &'static str,
    #[serde(skip_serializing_if = "<[usize]>::is_empty")]
    dependencies: &'a [usize],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    root: bool,
}

fn is_runtime(kind: &&'static str) -> bool {
    *kind == "runtime"
}

/// The dependency list as JSON, build-time crates included and marked as cargo-auditable does.
pub(crate) fn json(graph: &CrateGraph) -> Result<Vec<u8>> {
    let packages = graph
        .crates
        .iter()
        .enumerate()
        .map(|(i, c)| Package {
            name: &c.name,
            version: &c.version,
            source: match &c.source {
                Source::CratesIo => "crates.io".into(),
                Source::Registry(_) => "registry".into(),
                Source::Git { .. } => "git".into(),
                Source::Path => "local".into(),
            },
            kind: match c.kind {
                Kind::Runtime => "runtime",
                Kind::Build => "build",
            },
            dependencies: &c.dependencies,
            root: i == graph.root,
        })
        .collect();
    serde_json::to_vec(&VersionInfo { packages }).context("could not encode the dependency list")
}

/// The compressed JSON, as it goes into the section.
pub(crate) fn compressed(graph: &CrateGraph) -> Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&json(graph)?)?;
    Ok(encoder.finish()?)
}

/// A relocatable ELF object for `target` whose `.dep-v0` section holds `contents`.
pub(crate) fn object_file(target: &Target, contents: &[u8]) -> Result<Vec<u8>> {
    let architecture = match target.arch {
        Arch::Amd64 => Architecture::X86_64,
        Arch::Arm64 => Architecture::Aarch64,
    };
    let mut file = Object::new(BinaryFormat::Elf, architecture, Endianness::Little);
    let section = file.add_section(
        file.segment_name(StandardSegment::Data).to_vec(),
        SECTION.as_bytes().to_vec(),
        SectionKind::ReadOnlyData,
    );
    // Not SHF_ALLOC: the list is for readers of the file, not loaded into memory at run time.
    file.section_mut(section).flags = SectionFlags::Elf { sh_flags: 0 };
    let offset = file.append_section_data(section, contents, 1);
    file.add_symbol(Symbol {
        name: SYMBOL.as_bytes().to_vec(),
        value: offset,
        size: contents.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    file.write()
        .context("could not write the object file of the dependency list")
}

/// The contents of the `.dep-v0` section of an ELF file; `None` without one.
pub(crate) fn section(elf: &[u8]) -> Option<Vec<u8>> {
    let parsed = goblin::elf::Elf::parse(elf).ok()?;
    let header = parsed
        .section_headers
        .iter()
        .find(|s| parsed.shdr_strtab.get_at(s.sh_name) == Some(SECTION))?;
    let start = usize::try_from(header.sh_offset).ok()?;
    let end = start.checked_add(usize::try_from(header.sh_size).ok()?)?;
    elf.get(start..end).map(<[u8]>::to_vec)
}

/// How rustc runs the linker, which decides how linker flags are spelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Linker {
    /// Through a C compiler (`cc`, `musl-gcc`, clang, `zig cc`): linker flags go as `-Wl,…`.
    #[default]
    Driver,
    /// The linker itself (`rust-lld`, `ld.lld`): flags go as they are; `-Wl,` is an error.
    Bare,
}

/// What rustc needs to link the object into the binary and keep its section: the object, and
/// the symbol marked undefined so the linker keeps it, with POSIX's `-u`, which GNU ld, lld and
/// zig all take (zig refuses `--undefined=`).
pub(crate) fn link_args(object: &std::path::Path, linker: Linker) -> Vec<String> {
    let mut args = vec![format!("-Clink-arg={}", object.display())];
    match linker {
        Linker::Driver => args.push(format!("-Clink-arg=-Wl,-u,{SYMBOL}")),
        Linker::Bare => args.extend(["-Clink-arg=-u".into(), format!("-Clink-arg={SYMBOL}")]),
    }
    args
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::sbom::crates::Crate;

    pub(super) fn graph() -> CrateGraph {
        let c = |name: &str, kind, source, dependencies: Vec<usize>| Crate {
            name: name.into(),
            version: "1.0.0".into(),
            source,
            license: Some("MIT".into()),
            checksum: None,
            kind,
            dependencies,
            features: Vec::new(),
        };
        CrateGraph {
            crates: vec![
                c("app", Kind::Runtime, Source::Path, vec![1, 2]),
                c("cc", Kind::Build, Source::CratesIo, vec![]),
                c("serde", Kind::Runtime, Source::CratesIo, vec![]),
            ],
            root: 0,
            features: Vec::new(),
        }
    }

    #[test]
    fn json_is_cargo_auditables() {
        let json = String::from_utf8(json(&graph()).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"packages":[{"name":"app","version":"1.0.0","source":"local","dependencies":[1,2],"root":true},{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"},{"name":"serde","version":"1.0.0","source":"crates.io"}]}"#
        );
    }

    #[test]
    fn object_holds_the_compressed_list() {
        let target = Target::parse("aarch64-unknown-linux-musl").unwrap();
        let contents = compressed(&graph()).unwrap();
        let bytes = object_file(&target, &contents).unwrap();
        assert_eq!(bytes, object_file(&target, &contents).unwrap());
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert_eq!(elf.header.e_machine, goblin::elf::header::EM_AARCH64);
        let section = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(SECTION))
            .expect("a .dep-v0 section");
        let data = &bytes[section.sh_offset as usize..][..section.sh_size as usize];
        assert_eq!(super::section(&bytes).as_deref(), Some(data));
        assert_eq!(super::section(b"not an ELF file"), None);
        let mut inflated = String::new();
        flate2::read::ZlibDecoder::new(data)
            .read_to_string(&mut inflated)
            .unwrap();
        assert!(inflated.contains(r#""name":"serde""#));
    }
}
