//! The C libraries a build linked into the binaries, from what the build scripts of the target
//! told cargo (`cargo:rustc-link-lib=static=NAME`, which names exactly what is linked): a
//! library is listed whether a `-sys` crate built its bundled copy, a `-src` crate's, or a
//! crate compiled C sources of its own. [`super::vendored::NATIVE`] names the known ones as
//! their upstream projects; the version is read from the sources that were compiled (the
//! library's version header, or the crate's SemVer metadata), never guessed.

use std::path::{Path, PathBuf};

use super::CrateGraph;
use super::vendored::native;

/// What one build script for the target told cargo, and where its crate's sources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildScript {
    pub krate: String,
    pub version: String,
    /// The directory of the crate's Cargo.toml: its sources.
    pub manifest_dir: PathBuf,
    /// Its `OUT_DIR`, where bundled builds put their headers and libraries.
    pub out_dir: PathBuf,
    /// The features of the crate's compilation for the target.
    pub features: Vec<String>,
    /// The `NAME`s of its `rustc-link-lib=static=NAME`: the libraries linked into the binary.
    pub static_libs: Vec<String>,
}

/// A C library linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CLibrary {
    /// The upstream project's name (`openssl`), or the library's for a crate's own C code.
    pub name: String,
    /// As the compiled sources say it; `None` when they could not be read.
    pub version: Option<String>,
    /// `cpe:2.3:a:VENDOR:PRODUCT:VERSION:…`, where the NVD has a product for it.
    pub cpe: Option<String>,
    /// `pkg:generic/NAME@VERSION`.
    pub purl: String,
    /// The crate whose build script linked it, and its version.
    pub krate: String,
    pub krate_version: String,
    /// What the SBOM says of where it came from.
    pub comment: String,
}

/// Header files are small; a larger file is not one.
const HEADER_LIMIT: u64 = 8 << 20;
/// How far into `OUT_DIR` a header is looked for.
const OUT_DIR_DEPTH: usize = 6;
const OUT_DIR_ENTRIES: usize = 20_000;

/// The sources a build script compiled, for reading the library's version.
pub(crate) struct Sources<'a> {
    pub dir: &'a Path,
    pub out_dir: &'a Path,
    pub version: &'a str,
    pub features: &'a [String],
}

impl Sources<'_> {
    /// The text of a regular file of at most [`HEADER_LIMIT`] bytes.
    fn read(path: &Path) -> Option<String> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.is_file() || meta.len() > HEADER_LIMIT {
            return None;
        }
        Some(String::from_utf8_lossy(&std::fs::read(path).ok()?).into_owned())
    }

    /// The version string `#define NAME "1.2.3"` gives in the crate's file `relative`.
    pub(crate) fn define(&self, relative: &str, name: &str) -> Option<String> {
        version_token(&define(&Self::read(&self.dir.join(relative))?, name)?)
    }

    /// [`Sources::define`] in the first file under `OUT_DIR` whose path ends with `relative`.
    pub(crate) fn define_in_out_dir(&self, relative: &str, name: &str) -> Option<String> {
        let path = find(self.out_dir, relative)?;
        version_token(&define(&Self::read(&path)?, name)?)
    }

    /// `MAJOR.MINOR.PATCH` from numeric defines, `names` in that order.
    pub(crate) fn numbers(&self, relative: &str, names: &[&str]) -> Option<String> {
        let text = Self::read(&self.dir.join(relative))?;
        let parts: Option<Vec<String>> = names
            .iter()
            .map(|name| {
                let value = define(&text, name)?;
                value.parse::<u32>().ok().map(|n| n.to_string())
            })
            .collect();
        Some(parts?.join("."))
    }

    /// mimalloc's `MI_MALLOC_VERSION`: `20302` is 2.3.2, and before 2.1.3, `212` was 2.1.2.
    pub(crate) fn mimalloc(&self, relative: &str) -> Option<String> {
        let text = Self::read(&self.dir.join(relative))?;
        let n: u32 = define(&text, "MI_MALLOC_VERSION")?.parse().ok()?;
        Some(if n >= 10_000 {
            format!("{}.{}.{}", n / 10_000, n / 100 % 100, n % 100)
        } else {
            format!("{}.{}.{}", n / 100, n / 10 % 10, n % 10)
        })
    }

    /// The leading version of the crate's SemVer build metadata after `prefix`:
    /// `0.1.13+1.0.8` says bzip2 1.0.8, `2.0.15+zstd.1.5.7` zstd 1.5.7.
    pub(crate) fn metadata(&self, prefix: &str) -> Option<String> {
        let (_, metadata) = self.version.split_once('+')?;
        let rest = metadata.strip_prefix(prefix)?;
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let version = rest[..end].trim_end_matches('.');
        version.contains('.').then(|| version.to_string())
    }
}

/// The value of `#define NAME VALUE` (or `# define`), unquoted.
fn define(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix('#')?.trim_start();
        let rest = rest.strip_prefix("define")?;
        let mut words = rest.split_whitespace();
        (words.next()? == name).then_some(())?;
        let value = rest.trim_start().strip_prefix(name)?.trim();
        let value = value.split("/*").next()?.split("//").next()?.trim();
        Some(value.trim_matches('"').to_string())
    })
}

/// A version as the header writes it, up to a space or comma (`1.0.8, 13-Jul-2019`): it must
/// start with a digit and have a dot.
fn version_token(value: &str) -> Option<String> {
    let token = value.split([' ', ',']).next()?;
    (token.starts_with(|c: char| c.is_ascii_digit()) && token.contains('.'))
        .then(|| token.to_string())
}

/// The first regular file under `dir` whose path ends with `relative`, breadth first, bounded.
fn find(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    let mut seen = 0;
    for _ in 0..OUT_DIR_DEPTH {
        let mut next = Vec::new();
        for at in level {
            let candidate = at.join(relative);
            if std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.is_file()) {
                return Some(candidate);
            }
            let Ok(entries) = std::fs::read_dir(&at) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > OUT_DIR_ENTRIES {
                    return None;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(entry.path());
                }
            }
        }
        next.sort();
        level = next;
    }
    None
}

/// The C libraries the build scripts of one build linked, each once, sorted.
pub(crate) fn libraries(scripts: &[BuildScript]) -> Vec<CLibrary> {
    let mut found: Vec<CLibrary> = Vec::new();
    for script in scripts.iter().filter(|s| !s.static_libs.is_empty()) {
        let sources = Sources {
            dir: &script.manifest_dir,
            out_dir: &script.out_dir,
            version: &script.version,
            features: &script.features,
        };
        let from = format!("{} {}", script.krate, script.version);
        let made: Vec<(String, Option<String>, Option<&str>, String)> = match native(&script.krate)
        {
            Some(entry) => {
                let version = (entry.version)(&sources);
                let comment = match &version {
                    Some(_) => format!("C library built into the binary by {from}"),
                    None => format!(
                        "C library built into the binary by {from}; its version is not written in the sources it compiled"
                    ),
                };
                vec![(entry.library.to_string(), version, entry.cpe, comment)]
            }
            // A crate's own C sources are released with it: its version is theirs.
            None => script
                .static_libs
                .iter()
                .map(|lib| {
                    let comment = format!("C code of crate {from}, compiled into the binary");
                    (lib.clone(), Some(script.version.clone()), None, comment)
                })
                .collect(),
        };
        for (name, version, cpe, comment) in made {
            let purl = match &version {
                Some(v) => format!("pkg:generic/{name}@{v}"),
                None => format!("pkg:generic/{name}"),
            };
            let cpe = cpe.map(|product| {
                format!(
                    "cpe:2.3:a:{product}:{}:*:*:*:*:*:*:*",
                    version.as_deref().unwrap_or("*")
                )
            });
            let library = CLibrary {
                name,
                version,
                cpe,
                purl,
                krate: script.krate.clone(),
                krate_version: script.version.clone(),
                comment,
            };
            if !found.iter().any(|f| f.purl == library.purl) {
                found.push(library);
            }
        }
    }
    found.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    found
}

/// Those of `libraries` whose crate is compiled into the binary `graph` describes.
pub(crate) fn linked_into(libraries: &[CLibrary], graph: &CrateGraph) -> Vec<CLibrary> {
    libraries
        .iter()
        .filter(|l| linker(l, graph).is_some())
        .cloned()
        .collect()
}

/// The index in `graph` of the runtime crate that linked `library`.
pub(crate) fn linker(library: &CLibrary, graph: &CrateGraph) -> Option<usize> {
    graph
        .runtime()
        .find(|(_, c)| c.name == library.krate && c.version == library.krate_version)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn script(dir: &Path, krate: &str, version: &str, libs: &[&str]) -> BuildScript {
        BuildScript {
            krate: krate.into(),
            version: version.into(),
            manifest_dir: dir.join("src"),
            out_dir: dir.join("out"),
            features: Vec::new(),
            static_libs: libs.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn defines_are_read_as_headers_write_them() {
        let header = "#ifndef X\n# define OPENSSL_VERSION_STR \"3.6.3\"\n#define LIBSSH2_VERSION                             \"1.11.2_DEV\"\n\
                      #define BZ_VERSION  \"1.0.8, 13-Jul-2019\"\n#define ZSTD_VERSION_MAJOR    1 /* major */\n";
        assert_eq!(
            define(header, "OPENSSL_VERSION_STR").as_deref(),
            Some("3.6.3")
        );
        assert_eq!(
            version_token(&define(header, "LIBSSH2_VERSION").unwrap()).as_deref(),
            Some("1.11.2_DEV")
        );
        assert_eq!(
            version_token(&define(header, "BZ_VERSION").unwrap()).as_deref(),
            Some("1.0.8")
        );
        assert_eq!(define(header, "ZSTD_VERSION_MAJOR").as_deref(), Some("1"));
        assert_eq!(define(header, "OPENSSL_VERSION"), None);
        assert_eq!(version_token("the one it bundles"), None);
    }

    /// libgit2 from its header in OUT_DIR, zstd from its numbers, libsqlite3-sys without a
    /// readable header as NOASSERTION, and a crate's own C file under its own version.
    #[test]
    fn versions_come_from_the_compiled_sources() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join("git");
        write(
            &git.join("out/include/git2/version.h"),
            "#define LIBGIT2_VERSION           \"1.9.7\"\n",
        );
        let zstd = dir.path().join("zstd");
        write(
            &zstd.join("src/zstd/lib/zstd.h"),
            "#define ZSTD_VERSION_MAJOR    1\n#define ZSTD_VERSION_MINOR    5\n#define ZSTD_VERSION_RELEASE  7\n",
        );
        let scripts = [
            script(&git, "libgit2-sys", "0.18.8+1.9.7", &["git2"]),
            script(&zstd, "zstd-sys", "2.0.15+zstd.1.5.7", &["zstd"]),
            script(
                &dir.path().join("sql"),
                "libsqlite3-sys",
                "0.35.0",
                &["sqlite3"],
            ),
            script(&dir.path().join("own"), "greeting", "0.3.1", &["greet"]),
            script(&dir.path().join("none"), "serde", "1.0.0", &[]),
        ];
        let found: Vec<(String, Option<String>)> = libraries(&scripts)
            .into_iter()
            .map(|l| (l.name, l.version))
            .collect();
        assert_eq!(
            found,
            [
                ("greet".to_string(), Some("0.3.1".to_string())),
                ("libgit2".to_string(), Some("1.9.7".to_string())),
                ("sqlite".to_string(), None),
                ("zstd".to_string(), Some("1.5.7".to_string())),
            ]
        );
        let sqlite = &libraries(&scripts[2..3])[0];
        assert_eq!(sqlite.purl, "pkg:generic/sqlite");
        assert!(
            sqlite.comment.contains("libsqlite3-sys 0.35.0"),
            "{}",
            sqlite.comment
        );
        assert_eq!(
            sqlite.cpe.as_deref(),
            Some("cpe:2.3:a:sqlite:sqlite:*:*:*:*:*:*:*:*")
        );
    }

    #[test]
    fn metadata_and_mimalloc_numbers_read_as_released() {
        let sources = |version| Sources {
            dir: Path::new("/nonexistent"),
            out_dir: Path::new("/nonexistent"),
            version,
            features: &[],
        };
        assert_eq!(
            sources("0.1.13+1.0.8").metadata("").as_deref(),
            Some("1.0.8")
        );
        assert_eq!(
            sources("0.4.80+curl-8.12.1").metadata("curl-").as_deref(),
            Some("8.12.1")
        );
        assert_eq!(
            sources("0.6.0+5.3.0-1-ge13ca993e8").metadata("").as_deref(),
            Some("5.3.0")
        );
        assert_eq!(sources("1.1.22").metadata(""), None);
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("a.h"),
            "#define MI_MALLOC_VERSION 20302  // x\n",
        );
        write(&dir.path().join("b.h"), "#define MI_MALLOC_VERSION 212\n");
        let s = Sources {
            dir: dir.path(),
            ..sources("0.1.49")
        };
        assert_eq!(s.mimalloc("a.h").as_deref(), Some("2.3.2"));
        assert_eq!(s.mimalloc("b.h").as_deref(), Some("2.1.2"));
    }
}
