//! The `-sys` crates that compile a C library, one table ([`NATIVE`]) that answers both the
//! check before the build (does this crate's build script, for a musl target, build its own copy,
//! link the system's, or is that up to the environment?) and the SBOM (what the library it links
//! is called upstream, its CPE, and where its version is written in the sources it compiled).
//!
//! Each entry's `musl` decision follows the crate's build script, read from its source; `why`
//! says what in it the decision relies on. A musl target has no system copy of these libraries
//! unless the environment points a lookup at one: pkg-config answers for another target only
//! when told to (`PKG_CONFIG_ALLOW_CROSS`, `PKG_CONFIG_SYSROOT_DIR`, a target's `PKG_CONFIG`),
//! or on a musl host (Alpine) building for itself.

use std::collections::BTreeMap;

use super::linked::Sources;
use super::{Crate, CrateGraph};

/// What a `-sys` crate's build script does for a musl target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Musl {
    /// It compiles its own copy of the library (or one a `-src` crate brings) into the binary.
    Bundled,
    /// It links the system's copy, which a musl target does not have: the build fails, or
    /// links a library the scratch image lacks.
    System,
    /// It looks for a system copy where the environment lets it (the reason): it may find one.
    Unknown(&'static str),
}

/// What a build script's lookups can find for one target: the variables it reads, and whether
/// pkg-config answers for that target.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lookups {
    /// The environment's variables that steer system-library lookups (`Env::native_vars`).
    pub vars: BTreeMap<String, String>,
    /// The target's triple, as build scripts prefix variables with it.
    pub triple: String,
    /// The host is the target (a musl host building for itself): pkg-config answers, and the
    /// C compiler links the host's libraries.
    pub native_host: bool,
}

impl Lookups {
    /// Whether `name` is set, in any of the spellings build scripts try for a target:
    /// `NAME_<triple>`, `NAME_<triple_with_underscores>`, `<TRIPLE>_NAME`, `TARGET_NAME`, `NAME`.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        let underscored = self.triple.replace('-', "_");
        [
            format!("{name}_{}", self.triple),
            format!("{name}_{underscored}"),
            format!("{}_{name}", underscored.to_uppercase()),
            format!("TARGET_{name}"),
            name.to_string(),
        ]
        .iter()
        .find_map(|key| self.vars.get(key))
        .map(String::as_str)
    }

    /// Set, to anything but `0`, as `LIBGIT2_NO_VENDOR` and the like are read.
    fn on(&self, name: &str) -> bool {
        self.var(name).is_some_and(|v| v != "0")
    }

    /// Whether pkg-config-rs answers for the target: on a musl host building for itself, or
    /// when told it may cross (its `target_supported`).
    pub(crate) fn pkg_config(&self) -> bool {
        if self.native_host {
            return true;
        }
        match self.var("PKG_CONFIG_ALLOW_CROSS") {
            Some("0") => false,
            Some(_) => true,
            None => {
                self.var("PKG_CONFIG").is_some() || self.var("PKG_CONFIG_SYSROOT_DIR").is_some()
            }
        }
    }
}

/// One crate's features and graph, with the lookups of its target: what its build decides on.
pub(crate) struct BuildInputs<'a> {
    pub krate: &'a Crate,
    pub graph: &'a CrateGraph,
    pub lookups: &'a Lookups,
}

impl BuildInputs<'_> {
    fn feature(&self, name: &str) -> bool {
        self.krate.features.iter().any(|f| f == name)
    }

    /// The system copy is tried first, and used if found: the environment decides.
    fn system_first(&self) -> Musl {
        if self.lookups.pkg_config() {
            Musl::Unknown("pkg-config may find a system copy for this target")
        } else {
            Musl::Bundled
        }
    }

    /// Only the system copy is looked for: without a lookup that can find one, the build fails.
    fn system_only(&self, dir_vars: &[&str]) -> Musl {
        if let Some(var) = dir_vars.iter().find(|v| self.lookups.var(v).is_some()) {
            Musl::Unknown(var_reason(var))
        } else if self.lookups.pkg_config() {
            Musl::Unknown("pkg-config may find a system copy for this target")
        } else {
            Musl::System
        }
    }
}

/// Why a set variable makes the outcome unknown, for the warning.
fn var_reason(var: &str) -> &'static str {
    match var {
        "OPENSSL_DIR" | "OPENSSL_LIB_DIR" => "OPENSSL_DIR or OPENSSL_LIB_DIR names an OpenSSL",
        "SQLITE3_LIB_DIR" => "SQLITE3_LIB_DIR names a SQLite",
        "PQ_LIB_DIR" => "PQ_LIB_DIR names a libpq",
        _ => "a variable points its build script at a system copy",
    }
}

/// A crate of [`NATIVE`].
pub(crate) struct NativeCrate {
    pub krate: &'static str,
    /// The upstream project's name, as the SBOM names the library.
    pub library: &'static str,
    /// NVD's `vendor:product`, where the NVD has the product.
    pub cpe: Option<&'static str>,
    /// What its build script does for a musl target.
    pub musl: fn(&BuildInputs) -> Musl,
    /// What in the build script that decision relies on.
    pub why: &'static str,
    /// How to build the library from source when it would link the system's.
    pub fix: &'static str,
    /// A better fix when the chain to the crate passes through one of these crates.
    pub via: &'static [(&'static str, &'static str)],
    /// The library's version, from the sources that were compiled.
    pub version: fn(&Sources) -> Option<String>,
}

/// The entry of crate `name`, if it is one the table knows.
pub(crate) fn native(name: &str) -> Option<&'static NativeCrate> {
    NATIVE.iter().find(|n| n.krate == name)
}

/// tikv-jemalloc-sys and the jemalloc-sys it was forked from build alike.
const fn jemalloc(krate: &'static str) -> NativeCrate {
    NativeCrate {
        krate,
        library: "jemalloc",
        cpe: None,
        musl: |p| {
            if p.lookups.var("JEMALLOC_OVERRIDE").is_some() {
                Musl::Unknown("JEMALLOC_OVERRIDE names a jemalloc")
            } else {
                Musl::Bundled
            }
        },
        why: "it configures and builds its bundled jemalloc unless JEMALLOC_OVERRIDE names a prebuilt one",
        fix: "",
        via: &[],
        version: |s| {
            s.define_in_out_dir("jemalloc/jemalloc.h", "JEMALLOC_VERSION")
                .or_else(|| s.metadata(""))
        },
    }
}

/// AWS-LC, as aws-lc-sys and its FIPS build bundle it.
const fn aws_lc(krate: &'static str, why: &'static str) -> NativeCrate {
    NativeCrate {
        krate,
        library: "aws-lc",
        cpe: None,
        musl: |_| Musl::Bundled,
        why,
        fix: "",
        via: &[],
        version: |s| {
            s.define(
                "aws-lc/include/openssl/base.h",
                "AWSLC_VERSION_NUMBER_STRING",
            )
        },
    }
}

pub(crate) static NATIVE: &[NativeCrate] = &[
    NativeCrate {
        krate: "openssl-sys",
        library: "openssl",
        cpe: Some("openssl:openssl"),
        musl: |p| {
            let vendored = (p.feature("vendored")
                || p.graph.crates.iter().any(|c| c.name == "openssl-src"))
                && !p.lookups.on("OPENSSL_NO_VENDOR");
            if vendored {
                Musl::Bundled
            } else {
                p.system_only(&["OPENSSL_DIR", "OPENSSL_LIB_DIR"])
            }
        },
        why: "with `vendored` (and OPENSSL_NO_VENDOR unset) it builds openssl-src's OpenSSL; without, find_normal.rs takes OPENSSL_DIR / OPENSSL_LIB_DIR, then pkg-config, and on Linux has no other place to look: it panics (\"Could not find directory of OpenSSL installation\")",
        fix: "use rustls instead of OpenSSL (e.g. reqwest with default-features = false and its `rustls-tls` feature), or build OpenSSL from source with the `vendored` feature of the `openssl` crate",
        via: &[
            (
                "git2",
                "turn on git2's `vendored-openssl` feature, or, without HTTPS and SSH remotes, turn off its default features (`https`, `ssh`)",
            ),
            (
                "curl",
                "turn on curl's `static-ssl` feature, or use its `rustls` feature",
            ),
            (
                "native-tls",
                "turn on native-tls's `vendored` feature, or use rustls (e.g. reqwest with default-features = false and its `rustls-tls` feature)",
            ),
        ],
        version: |s| s.define_in_out_dir("openssl/opensslv.h", "OPENSSL_VERSION_STR"),
    },
    NativeCrate {
        krate: "libgit2-sys",
        library: "libgit2",
        cpe: Some("libgit2_project:libgit2"),
        musl: |p| {
            if p.lookups.on("LIBGIT2_NO_VENDOR") {
                p.system_only(&[])
            } else if p.feature("vendored") || p.feature("zlib-ng-compat") {
                Musl::Bundled
            } else {
                p.system_first()
            }
        },
        why: "unless `vendored` or `zlib-ng-compat`, it asks pkg-config for libgit2 1.9 and falls back to its bundled copy when that fails; LIBGIT2_NO_VENDOR forces the system one",
        fix: "turn on the `vendored-libgit2` feature of git2",
        via: &[],
        version: |s| {
            s.define_in_out_dir("git2/version.h", "LIBGIT2_VERSION")
                .or_else(|| s.metadata(""))
        },
    },
    NativeCrate {
        krate: "libz-sys",
        library: "zlib",
        cpe: Some("zlib:zlib"),
        musl: |p| {
            if p.feature("static") || p.feature("zlib-ng") {
                Musl::Bundled
            } else if p.lookups.native_host {
                Musl::Unknown(
                    "on a musl host its build links the host's zlib when the C compiler finds one",
                )
            } else {
                p.system_first()
            }
        },
        why: "without `static` it asks pkg-config, then links `-lz` only if the target's C compiler links a test program with it (a musl cross compiler has no zlib), else builds its bundled zlib",
        fix: "turn on the `static` feature of libz-sys",
        via: &[],
        version: |s| {
            s.define_in_out_dir("zlib.h", "ZLIB_VERSION")
                .or_else(|| s.define("src/zlib/zlib.h", "ZLIB_VERSION"))
        },
    },
    NativeCrate {
        krate: "libz-ng-sys",
        library: "zlib-ng",
        cpe: Some("zlib-ng:zlib-ng"),
        musl: |_| Musl::Bundled,
        why: "it always builds its bundled zlib-ng (cmake, or cc)",
        fix: "",
        via: &[],
        version: |s| {
            s.define_in_out_dir("zlib-ng.h", "ZLIBNG_VERSION")
                .or_else(|| s.define("src/zlib-ng/zlib-ng.h.in", "ZLIBNG_VERSION"))
        },
    },
    NativeCrate {
        krate: "libssh2-sys",
        library: "libssh2",
        cpe: Some("libssh2:libssh2"),
        musl: |p| {
            if p.lookups.on("LIBSSH2_SYS_USE_PKG_CONFIG") {
                p.system_first()
            } else {
                Musl::Bundled
            }
        },
        why: "it builds its bundled libssh2 unless LIBSSH2_SYS_USE_PKG_CONFIG is set, and then too when pkg-config finds none",
        fix: "",
        via: &[],
        version: |s| s.define_in_out_dir("libssh2.h", "LIBSSH2_VERSION"),
    },
    NativeCrate {
        krate: "curl-sys",
        library: "curl",
        cpe: Some("haxx:libcurl"),
        musl: |p| {
            if p.feature("static-curl") {
                Musl::Bundled
            } else {
                p.system_first()
            }
        },
        why: "without `static-curl` it asks pkg-config for libcurl and builds its bundled curl when that fails",
        fix: "turn on the `static-curl` feature of curl",
        via: &[],
        version: |s| {
            s.define_in_out_dir("curl/curlver.h", "LIBCURL_VERSION")
                .or_else(|| s.metadata("curl-"))
        },
    },
    NativeCrate {
        krate: "zstd-sys",
        library: "zstd",
        cpe: Some("facebook:zstandard"),
        musl: |p| {
            if (p.feature("pkg-config") && !p.feature("vendored"))
                || p.lookups.on("ZSTD_SYS_USE_PKG_CONFIG")
            {
                p.system_only(&[])
            } else {
                Musl::Bundled
            }
        },
        why: "it builds its bundled zstd unless the `pkg-config` feature (without `vendored`) or ZSTD_SYS_USE_PKG_CONFIG asks for the system's, which it then requires (\"Can't probe for zstd in pkg-config\")",
        fix: "turn off the `pkg-config` feature of zstd / zstd-sys",
        via: &[],
        version: |s| {
            s.numbers(
                "zstd/lib/zstd.h",
                &[
                    "ZSTD_VERSION_MAJOR",
                    "ZSTD_VERSION_MINOR",
                    "ZSTD_VERSION_RELEASE",
                ],
            )
            .or_else(|| s.metadata("zstd."))
        },
    },
    NativeCrate {
        krate: "bzip2-sys",
        library: "bzip2",
        cpe: Some("bzip:bzip2"),
        musl: |p| {
            if p.feature("static") {
                Musl::Bundled
            } else {
                p.system_first()
            }
        },
        why: "without `static` it asks pkg-config for bzip2 and builds its bundled copy when that fails",
        fix: "turn on the `static` feature of bzip2-sys",
        via: &[],
        version: |s| s.metadata(""),
    },
    NativeCrate {
        krate: "lzma-sys",
        library: "xz",
        cpe: Some("tukaani:xz"),
        musl: |p| {
            if p.feature("static") || p.lookups.var("LZMA_API_STATIC").is_some() {
                Musl::Bundled
            } else {
                p.system_first()
            }
        },
        why: "without `static` (or LZMA_API_STATIC) it asks pkg-config for liblzma and builds its bundled xz when that fails",
        fix: "turn on the `static` feature of xz2 / lzma-sys",
        via: &[],
        version: |s| {
            s.numbers(
                "xz-5.2/src/liblzma/api/lzma/version.h",
                &[
                    "LZMA_VERSION_MAJOR",
                    "LZMA_VERSION_MINOR",
                    "LZMA_VERSION_PATCH",
                ],
            )
        },
    },
    NativeCrate {
        krate: "libsqlite3-sys",
        library: "sqlite",
        cpe: Some("sqlite:sqlite"),
        musl: |p| {
            let linked = p.lookups.on("LIBSQLITE3_SYS_USE_PKG_CONFIG")
                || p.feature("loadable_extension")
                || (p.feature("sqlcipher") && !p.feature("bundled-sqlcipher"));
            if !linked && (p.feature("bundled") || p.feature("bundled-sqlcipher")) {
                Musl::Bundled
            } else {
                p.system_only(&["SQLITE3_LIB_DIR"])
            }
        },
        why: "with `bundled` it compiles its sqlite3.c; without, it takes SQLITE3_LIB_DIR, then pkg-config, and else emits `-l sqlite3` hoping the linker finds one, which a musl target does not have",
        fix: "turn on the `bundled` feature of rusqlite (or libsqlite3-sys)",
        via: &[],
        version: |s| {
            s.define("sqlite3/sqlite3.h", "SQLITE_VERSION")
                .or_else(|| s.define("sqlcipher/sqlite3.h", "SQLITE_VERSION"))
        },
    },
    NativeCrate {
        krate: "pq-sys",
        library: "libpq",
        cpe: Some("postgresql:postgresql"),
        musl: |p| {
            if p.feature("bundled") || p.feature("bundled_without_openssl") {
                Musl::Bundled
            } else {
                p.system_only(&["PQ_LIB_DIR"])
            }
        },
        why: "with `bundled` pq-src builds libpq; without, it links `-l pq` from PQ_LIB_DIR, pkg-config or the host's pg_config, none of which has a musl libpq",
        fix: "turn on the `bundled` feature of pq-sys",
        via: &[],
        version: |_| None,
    },
    NativeCrate {
        krate: "pq-src",
        library: "libpq",
        cpe: Some("postgresql:postgresql"),
        musl: |_| Musl::Bundled,
        why: "it compiles the PostgreSQL client library it bundles",
        fix: "",
        via: &[],
        version: |s| s.metadata("libpq-"),
    },
    NativeCrate {
        krate: "onig_sys",
        library: "oniguruma",
        cpe: Some("oniguruma_project:oniguruma"),
        musl: |p| {
            if p.lookups.on("RUSTONIG_SYSTEM_LIBONIG") {
                p.system_only(&[])
            } else if p.lookups.on("RUSTONIG_DYNAMIC_LIBONIG") {
                p.system_first()
            } else {
                Musl::Bundled
            }
        },
        why: "it compiles its bundled Oniguruma unless RUSTONIG_SYSTEM_LIBONIG (required from pkg-config) or RUSTONIG_DYNAMIC_LIBONIG (tried first) asks for the system's",
        fix: "",
        via: &[],
        version: |s| {
            s.numbers(
                "oniguruma/src/oniguruma.h",
                &[
                    "ONIGURUMA_VERSION_MAJOR",
                    "ONIGURUMA_VERSION_MINOR",
                    "ONIGURUMA_VERSION_TEENY",
                ],
            )
        },
    },
    jemalloc("tikv-jemalloc-sys"),
    jemalloc("jemalloc-sys"),
    NativeCrate {
        krate: "libmimalloc-sys",
        library: "mimalloc",
        cpe: None,
        musl: |_| Musl::Bundled,
        why: "it always compiles its bundled mimalloc (v3, or v2 with the `v2` feature)",
        fix: "",
        via: &[],
        version: |s| {
            let dir = if s.features.iter().any(|f| f == "v2") {
                "v2"
            } else {
                "v3"
            };
            s.mimalloc(&format!("c_src/mimalloc/{dir}/include/mimalloc.h"))
                .or_else(|| s.mimalloc("c_src/mimalloc/include/mimalloc.h"))
        },
    },
    aws_lc(
        "aws-lc-sys",
        "it always builds its bundled AWS-LC (cmake, or its cc builder)",
    ),
    aws_lc(
        "aws-lc-fips-sys",
        "it always builds its bundled AWS-LC FIPS module (cmake)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::crates::tests::graph;

    /// What the table decides for crate `name` with `features`, beside `others`.
    fn decide(name: &str, features: &[&str], others: &[&str], vars: &[(&str, &str)]) -> Musl {
        let mut crates = vec![("app", &[][..], &[1usize][..]), (name, features, &[][..])];
        crates.extend(others.iter().map(|o| (*o, &[][..], &[][..])));
        let g = graph(&crates);
        let lookups = Lookups {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            triple: "x86_64-unknown-linux-musl".into(),
            native_host: false,
        };
        let probe = BuildInputs {
            krate: &g.crates[1],
            graph: &g,
            lookups: &lookups,
        };
        (native(name).unwrap().musl)(&probe)
    }

    /// The decisions the crates rely on, each as its build script makes it.
    #[test]
    fn the_table_decides_as_the_build_scripts_do() {
        use Musl::*;
        let cross = [("PKG_CONFIG_ALLOW_CROSS", "1")];
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
            Musl,
        );
        let cases: &[Case] = &[
            ("libgit2-sys", &["https", "ssh"], &[], &[], Bundled),
            (
                "libgit2-sys",
                &[],
                &[],
                &cross,
                Unknown("pkg-config may find a system copy for this target"),
            ),
            (
                "libgit2-sys",
                &[],
                &[],
                &[("LIBGIT2_NO_VENDOR", "1")],
                System,
            ),
            ("libgit2-sys", &["vendored"], &[], &cross, Bundled),
            ("libz-sys", &["libc", "stock-zlib"], &[], &[], Bundled),
            ("libssh2-sys", &[], &[], &[], Bundled),
            ("curl-sys", &["ssl"], &[], &[], Bundled),
            ("zstd-sys", &["legacy"], &[], &[], Bundled),
            ("zstd-sys", &["pkg-config"], &[], &[], System),
            ("bzip2-sys", &[], &[], &[], Bundled),
            ("lzma-sys", &[], &[], &[], Bundled),
            ("libsqlite3-sys", &["bundled"], &[], &[], Bundled),
            (
                "libsqlite3-sys",
                &["min_sqlite_version_3_14_0"],
                &[],
                &[],
                System,
            ),
            (
                "libsqlite3-sys",
                &[],
                &[],
                &[("SQLITE3_LIB_DIR", "/musl/lib")],
                Unknown("SQLITE3_LIB_DIR names a SQLite"),
            ),
            ("openssl-sys", &[], &[], &[], System),
            ("openssl-sys", &["vendored"], &[], &[], Bundled),
            ("openssl-sys", &[], &["openssl-src"], &[], Bundled),
            (
                "openssl-sys",
                &["vendored"],
                &[],
                &[("OPENSSL_NO_VENDOR", "1")],
                System,
            ),
            (
                "openssl-sys",
                &[],
                &[],
                &[("X86_64_UNKNOWN_LINUX_MUSL_OPENSSL_DIR", "/musl")],
                Unknown("OPENSSL_DIR or OPENSSL_LIB_DIR names an OpenSSL"),
            ),
            ("pq-sys", &["pkg-config"], &[], &[], System),
            ("pq-sys", &["bundled"], &[], &[], Bundled),
            ("onig_sys", &[], &[], &[], Bundled),
            ("tikv-jemalloc-sys", &[], &[], &[], Bundled),
            ("libmimalloc-sys", &[], &[], &[], Bundled),
            ("aws-lc-sys", &[], &[], &[], Bundled),
        ];
        for (name, features, others, vars, want) in cases {
            assert_eq!(
                decide(name, features, others, vars),
                *want,
                "{name} {features:?} {vars:?}"
            );
        }
    }

    /// Every entry says what it relies on, and one that can link the system's copy says how
    /// to build it from source instead.
    #[test]
    fn every_entry_records_its_reasoning() {
        for entry in NATIVE {
            assert!(entry.why.len() > 40, "{}: {}", entry.krate, entry.why);
            let g = graph(&[("app", &[], &[1]), (entry.krate, &[], &[])]);
            let probe = BuildInputs {
                krate: &g.crates[1],
                graph: &g,
                lookups: &Lookups::default(),
            };
            if (entry.musl)(&probe) == Musl::System {
                assert!(!entry.fix.is_empty(), "{}", entry.krate);
            }
        }
        let mut names: Vec<&str> = NATIVE.iter().map(|n| n.krate).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NATIVE.len(), "one entry per crate");
    }
}
