//! The checks that read a binary's crate graph: system libraries, musl's malloc under threads,
//! SIGTERM, and the crates whose C build needs a compiler that links.

use std::collections::{BTreeMap, VecDeque};

use super::{Check, Finding, Severity};
use crate::sbom::{CrateGraph, Kind};

/// `-sys` crates that link a system library unless a feature builds it from source, and how.
const SYSTEM_LIBRARIES: &[(&str, &[&str], &str)] = &[
    (
        "openssl-sys",
        &["vendored"],
        "use rustls instead of OpenSSL (e.g. reqwest with default-features = false and its `rustls-tls` feature), or build OpenSSL from source with the `vendored` feature of the `openssl` crate",
    ),
    (
        "libsqlite3-sys",
        &[
            "bundled",
            "bundled-sqlcipher",
            "bundled-sqlcipher-vendored-openssl",
        ],
        "turn on the `bundled` feature of rusqlite (or libsqlite3-sys)",
    ),
    (
        "libgit2-sys",
        &["vendored"],
        "turn on the `vendored-libgit2` feature of git2",
    ),
    (
        "curl-sys",
        &["static-curl"],
        "turn on the `static-curl` feature of curl",
    ),
    (
        "pq-sys",
        &["bundled"],
        "turn on the `bundled` feature of pq-sys",
    ),
];

/// Crates that run threads of their own (the name, and the feature that does, if only one does).
const THREADED: &[(&str, Option<&str>, &str)] = &[
    (
        "tokio",
        Some("rt-multi-thread"),
        "tokio's `rt-multi-thread`",
    ),
    ("rayon-core", None, "rayon"),
    ("actix-server", None, "actix-web's workers"),
    ("async-global-executor", None, "async-std's executor"),
];

/// Global allocators a program can use instead of musl's malloc.
const ALLOCATORS: &[&str] = &[
    "mimalloc",
    "tikv-jemallocator",
    "jemallocator",
    "snmalloc-rs",
    "rpmalloc",
    "tcmalloc",
];

/// Crates that handle SIGTERM (the name, and the feature that does, if only one does).
const SIGNAL_HANDLERS: &[(&str, Option<&str>)] = &[
    ("tokio", Some("signal")),
    ("signal-hook", None),
    ("signal-hook-registry", None),
    ("ctrlc", None),
    ("async-signal", None),
];

/// Crates whose build script runs a configure step that links test programs: cmake's and
/// autotools' checks, jemalloc's configure.
const LINKING_BUILDS: &[&str] = &["tikv-jemalloc-sys", "jemalloc-sys"];
const LINKING_BUILD_TOOLS: &[&str] = &["cmake", "autotools"];

/// The runtime crates of `graph` named `name` that have one of `features` (any, when `None`).
fn has(graph: &CrateGraph, name: &str, feature: Option<&str>) -> bool {
    graph.runtime().any(|(_, c)| {
        c.name == name && feature.is_none_or(|f| c.features.iter().any(|have| have == f))
    })
}

/// `app → reqwest → native-tls → openssl-sys`: the shortest chain of runtime dependencies from
/// the root to crate `target`.
fn chain(graph: &CrateGraph, target: usize) -> String {
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([graph.root]);
    while let Some(at) = queue.pop_front() {
        if at == target {
            break;
        }
        for &dep in &graph.crates[at].dependencies {
            if graph.crates[dep].kind == Kind::Runtime
                && dep != graph.root
                && !parent.contains_key(&dep)
            {
                parent.insert(dep, at);
                queue.push_back(dep);
            }
        }
    }
    let mut names = vec![graph.crates[target].name.as_str()];
    let mut at = target;
    while let Some(&up) = parent.get(&at) {
        names.push(graph.crates[up].name.as_str());
        at = up;
    }
    names.reverse();
    names.join(" → ")
}

/// What the crate graph of `package`'s binaries says.
pub(crate) fn graph_findings(package: &str, graph: &CrateGraph) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, c) in graph.runtime() {
        let Some((_, vendored, fix)) = SYSTEM_LIBRARIES.iter().find(|(n, ..)| *n == c.name) else {
            continue;
        };
        let from_source = c.features.iter().any(|f| vendored.contains(&f.as_str()))
            // openssl-src, a build dependency, builds it from source.
            || (c.name == "openssl-sys" && graph.crates.iter().any(|c| c.name == "openssl-src"));
        if !from_source {
            findings.push(Finding {
                check: Check::SystemLibrary,
                severity: Severity::Error,
                message: format!(
                    "`{package}` links the system library of {}, which a static musl binary cannot use: {}\nhelp: {fix}",
                    c.name,
                    chain(graph, index)
                ),
            });
        }
    }
    let threads = THREADED
        .iter()
        .find(|(name, feature, _)| has(graph, name, *feature));
    let allocator = ALLOCATORS.iter().any(|name| has(graph, name, None));
    if let (Some((.., what)), false) = (threads, allocator) {
        findings.push(Finding {
            check: Check::MuslMalloc,
            severity: Severity::Warning,
            message: format!(
                "`{package}` runs threads ({what}) on musl's malloc, which is much slower than glibc's when threads allocate at once\n\
                 help: use another allocator: add mimalloc (or tikv-jemallocator) and `#[global_allocator] static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;`"
            ),
        });
    }
    if !SIGNAL_HANDLERS
        .iter()
        .any(|(name, feature)| has(graph, name, *feature))
    {
        findings.push(Finding {
            check: Check::Sigterm,
            severity: Severity::Note,
            message: format!(
                "`{package}` does not handle SIGTERM: as PID 1 in a container it ignores `docker stop`, which kills it after 10 s\n\
                 help: handle it (tokio's `signal` feature, signal-hook or ctrlc), or run the image with `docker run --init`"
            ),
        });
    }
    findings
}

/// The crates of `graph` whose build links C test programs, so it needs a C compiler that can
/// link for the target, not only compile.
pub(crate) fn cross_c_crates(graph: &CrateGraph) -> Vec<String> {
    let tools: Vec<usize> = graph
        .crates
        .iter()
        .enumerate()
        .filter(|(_, c)| LINKING_BUILD_TOOLS.contains(&c.name.as_str()))
        .map(|(i, _)| i)
        .collect();
    graph
        .runtime()
        .filter(|(_, c)| {
            LINKING_BUILDS.contains(&c.name.as_str())
                || c.dependencies.iter().any(|d| tools.contains(d))
        })
        .map(|(_, c)| c.name.clone())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sbom::{Crate, Source};

    /// A graph of `(name, features, dependencies)`, the first the root, every crate runtime
    /// unless its name ends in `!build`.
    pub(crate) fn graph(crates: &[(&str, &[&str], &[usize])]) -> CrateGraph {
        CrateGraph {
            crates: crates
                .iter()
                .map(|(name, features, deps)| {
                    let (name, kind) = match name.strip_suffix("!build") {
                        Some(name) => (name, Kind::Build),
                        None => (*name, Kind::Runtime),
                    };
                    Crate {
                        name: name.to_string(),
                        version: "1.0.0".into(),
                        source: Source::CratesIo,
                        license: None,
                        checksum: None,
                        kind,
                        dependencies: deps.to_vec(),
                        features: features.iter().map(|f| f.to_string()).collect(),
                    }
                })
                .collect(),
            root: 0,
            features: Vec::new(),
        }
    }

    fn checks(findings: &[Finding]) -> Vec<Check> {
        findings.iter().map(|f| f.check).collect()
    }

    #[test]
    fn openssl_without_vendored_names_the_chain() {
        let g = graph(&[
            ("app", &[], &[1, 4]),
            ("reqwest", &[], &[2]),
            ("native-tls", &[], &[3]),
            ("openssl-sys", &[], &[]),
            ("tokio", &["signal"], &[]),
        ]);
        let findings = graph_findings("app", &g);
        assert_eq!(checks(&findings), [Check::SystemLibrary]);
        assert_eq!(
            findings[0].message.lines().next().unwrap(),
            "`app` links the system library of openssl-sys, which a static musl binary cannot use: app → reqwest → native-tls → openssl-sys"
        );
        let vendored = graph(&[
            ("app", &[], &[1, 2]),
            ("openssl-sys", &["vendored"], &[]),
            ("ctrlc", &[], &[]),
        ]);
        assert!(graph_findings("app", &vendored).is_empty());
        let source = graph(&[
            ("app", &[], &[1, 3]),
            ("openssl-sys", &[], &[2]),
            ("openssl-src!build", &[], &[]),
            ("ctrlc", &[], &[]),
        ]);
        assert!(
            graph_findings("app", &source).is_empty(),
            "openssl-src builds it"
        );
    }

    #[test]
    fn threads_want_an_allocator_and_pid_1_wants_sigterm() {
        let threaded = graph(&[("app", &[], &[1]), ("tokio", &["rt-multi-thread"], &[])]);
        assert_eq!(
            checks(&graph_findings("app", &threaded)),
            [Check::MuslMalloc, Check::Sigterm]
        );
        let with_allocator = graph(&[
            ("app", &[], &[1, 2]),
            ("tokio", &["rt-multi-thread", "signal"], &[]),
            ("mimalloc", &[], &[]),
        ]);
        assert!(graph_findings("app", &with_allocator).is_empty());
        let current_thread = graph(&[("app", &[], &[1]), ("tokio", &["rt", "signal"], &[])]);
        assert!(graph_findings("app", &current_thread).is_empty());
        let rayon = graph(&[
            ("app", &[], &[1, 2]),
            ("rayon-core", &[], &[]),
            ("signal-hook", &[], &[]),
        ]);
        assert_eq!(checks(&graph_findings("app", &rayon)), [Check::MuslMalloc]);
    }

    #[test]
    fn configure_steps_need_a_linking_compiler() {
        let g = graph(&[
            ("app", &[], &[1, 2, 4]),
            ("tikv-jemalloc-sys", &[], &[]),
            ("zstd-sys", &[], &[3]),
            ("cc!build", &[], &[]),
            ("libz-ng-sys", &[], &[5]),
            ("cmake!build", &[], &[]),
        ]);
        assert_eq!(cross_c_crates(&g), ["tikv-jemalloc-sys", "libz-ng-sys"]);
    }
}
