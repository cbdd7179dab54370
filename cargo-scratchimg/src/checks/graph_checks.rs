//! The checks that read a binary's crate graph: system libraries, musl's malloc under threads,
//! SIGTERM in services, and the crates whose C build needs a compiler that links.

use std::collections::{BTreeMap, VecDeque};

use super::levers::PackageFeatures;
use super::{Check, Finding, Severity};
use crate::sbom::vendored::{BuildInputs, Lookups, Musl, native};
use crate::sbom::{CrateGraph, Kind};

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

/// Crates that make a program a long-running service (the name, and the features it needs
/// for that, all of them): as PID 1 such a program must handle SIGTERM for `docker stop`.
const SERVICES: &[(&str, &[&str], &str)] = &[
    ("hyper", &["server"], "hyper's server"),
    ("axum", &[], "axum"),
    ("actix-web", &[], "actix-web"),
    ("tonic", &[], "tonic"),
    ("warp", &[], "warp"),
    ("rocket", &[], "rocket"),
    ("poem", &[], "poem"),
    ("salvo", &[], "salvo"),
    ("tide", &[], "tide"),
    ("tiny_http", &[], "tiny_http"),
    (
        "tokio",
        &["net", "rt-multi-thread"],
        "tokio's `net` and `rt-multi-thread`",
    ),
];

/// Crates whose build script runs a configure step that links test programs: cmake's and
/// autotools' checks, jemalloc's configure.
const LINKING_BUILDS: &[&str] = &["tikv-jemalloc-sys", "jemalloc-sys"];
const LINKING_BUILD_TOOLS: &[&str] = &["cmake", "autotools"];

/// Whether a runtime crate of `graph` is named `name` and has all of `features`.
fn has(graph: &CrateGraph, name: &str, features: &[&str]) -> bool {
    graph.runtime().any(|(_, c)| {
        c.name == name
            && features
                .iter()
                .all(|f| c.features.iter().any(|have| have == f))
    })
}

/// `app → reqwest → native-tls → openssl-sys`: the shortest chain of runtime dependencies from
/// the root to crate `target`, as indices.
fn chain(graph: &CrateGraph, target: usize) -> Vec<usize> {
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
    let mut chain = vec![target];
    let mut at = target;
    while let Some(&up) = parent.get(&at) {
        chain.push(up);
        at = up;
    }
    chain.reverse();
    chain
}

fn shown(graph: &CrateGraph, chain: &[usize]) -> String {
    chain
        .iter()
        .map(|&i| graph.crates[i].name.as_str())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The `-sys` crates of `graph` whose build for the target links a system library (an error:
/// the build fails, or the binary needs what the image lacks) or may (a warning: the build
/// goes on, and the check of the binary after it has the last word), by [`NATIVE`]'s reading
/// of their build scripts.
///
/// [`NATIVE`]: crate::sbom::vendored::NATIVE
fn system_libraries(
    package: &PackageFeatures,
    graph: &CrateGraph,
    lookups: &Lookups,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, krate) in graph.runtime() {
        let Some(entry) = native(&krate.name) else {
            continue;
        };
        let probe = BuildInputs {
            krate,
            graph,
            lookups,
        };
        let chain = chain(graph, index);
        let name = &package.name;
        let path = shown(graph, &chain);
        let fix = entry
            .via
            .iter()
            .find(|(through, _)| chain.iter().any(|&i| graph.crates[i].name == *through))
            .map(|(_, fix)| *fix)
            .or((!entry.fix.is_empty()).then_some(entry.fix))
            .map(|fix| format!("help: {fix}"));
        match (entry.musl)(&probe) {
            Musl::Bundled => {}
            Musl::System => {
                // The user's own feature that pulls it in first, then the crate's way out.
                let lever = chain.get(1).and_then(|&first| {
                    let next = chain.get(2).map(|&n| graph.crates[n].name.as_str());
                    package.help(graph, &graph.crates[first].name, next)
                });
                let help: Vec<String> = match (lever, fix) {
                    (Some(lever), Some(fix)) => vec![lever, fix.replacen("help: ", "help: or ", 1)],
                    (lever, fix) => lever.into_iter().chain(fix).collect(),
                };
                findings.push(Finding {
                    check: Check::SystemLibrary,
                    severity: Severity::Error,
                    message: format!(
                        "`{name}` links the system library of {}, which a static musl binary cannot use: {path}\n{}",
                        krate.name,
                        help.join("\n")
                    ),
                });
            }
            Musl::Unknown(why) => findings.push(Finding {
                check: Check::SystemLibrary,
                severity: Severity::Warning,
                message: format!(
                    "`{name}` may link the system library of {} ({why}): {path}\n\
                     note: {}: {}\n\
                     help: the build goes on, and the check of the binary after it stops a dynamic one{}",
                    krate.name,
                    krate.name,
                    entry.why,
                    fix.map(|f| format!("\n{f}")).unwrap_or_default()
                ),
            }),
        }
    }
    findings
}

/// What the crate graph of `package`'s binaries says, with the lookups of the target.
pub(crate) fn graph_findings(
    package: &PackageFeatures,
    graph: &CrateGraph,
    lookups: &Lookups,
) -> Vec<Finding> {
    let name = &package.name;
    let mut findings = system_libraries(package, graph, lookups);
    let threads = THREADED
        .iter()
        .find(|(crate_name, feature, _)| has(graph, crate_name, feature.as_slice()));
    let allocator = ALLOCATORS.iter().any(|a| has(graph, a, &[]));
    if let (Some((.., what)), false) = (threads, allocator) {
        // The package's own feature that turns one on is the one-flag fix.
        let own = package.turning_on(ALLOCATORS);
        let help = match own.as_slice() {
            [] => "help: use another allocator: add mimalloc (or tikv-jemallocator) and `#[global_allocator] static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;`".to_string(),
            features => format!(
                "help: turn on `{name}`'s {} (`--features {}`), or the `features` setting",
                features.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" or "),
                features[0]
            ),
        };
        findings.push(Finding {
            check: Check::MuslMalloc,
            severity: Severity::Warning,
            message: format!(
                "`{name}` runs threads ({what}) on musl's malloc, which is much slower than glibc's when threads allocate at once\n{help}"
            ),
        });
    }
    if let Some((.., what)) = SERVICES
        .iter()
        .find(|(crate_name, features, _)| has(graph, crate_name, features))
    {
        findings.push(Finding {
            check: Check::Sigterm,
            severity: Severity::Note,
            message: format!(
                "`{name}` looks like a service ({what}): as PID 1 in a container it gets `docker stop`'s SIGTERM, which does nothing unless the program handles it; check that it handles SIGTERM, not only Ctrl-C (SIGINT)\n\
                 help: tokio's `signal::unix::signal(SignalKind::terminate())`, signal-hook, or ctrlc's `termination` feature; or run the image with `docker run --init`\n\
                 help: `time docker stop NAME` returning at once, not after 10 s, shows that it does"
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
mod tests {
    use super::*;
    use crate::checks::levers::tests::package;
    use crate::sbom::crates::tests::graph;

    fn checks(findings: &[Finding]) -> Vec<Check> {
        findings.iter().map(|f| f.check).collect()
    }

    fn findings(g: &CrateGraph) -> Vec<Finding> {
        graph_findings(&package(&[], &[]), g, &Lookups::default())
    }

    #[test]
    fn openssl_without_vendored_names_the_chain() {
        let g = graph(&[
            ("app", &[], &[1]),
            ("reqwest", &[], &[2]),
            ("native-tls", &[], &[3]),
            ("openssl-sys", &[], &[]),
        ]);
        let found = findings(&g);
        assert_eq!(checks(&found), [Check::SystemLibrary]);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(
            found[0].message.lines().next().unwrap(),
            "`app` links the system library of openssl-sys, which a static musl binary cannot use: app → reqwest → native-tls → openssl-sys"
        );
        let vendored = graph(&[("app", &[], &[1]), ("openssl-sys", &["vendored"], &[])]);
        assert!(findings(&vendored).is_empty());
        let source = graph(&[
            ("app", &[], &[1]),
            ("openssl-sys", &[], &[2]),
            ("openssl-src!build", &[], &[]),
        ]);
        assert!(findings(&source).is_empty(), "openssl-src builds it");
    }

    /// git2's defaults: libgit2-sys and libssh2-sys fall back to their own copies, and only
    /// the OpenSSL they use stops the build; with it vendored, nothing does.
    #[test]
    fn crates_that_fall_back_to_their_own_copy_are_not_refused() {
        let g = graph(&[
            ("app", &[], &[1]),
            ("git2", &["https", "ssh"], &[2]),
            ("libgit2-sys", &["https", "ssh"], &[3, 4, 5]),
            ("libssh2-sys", &[], &[5]),
            ("libz-sys", &["libc"], &[]),
            ("openssl-sys", &[], &[]),
        ]);
        let found = findings(&g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("of openssl-sys"),
            "{}",
            found[0].message
        );
        let lookups = Lookups {
            vars: [("PKG_CONFIG_ALLOW_CROSS".to_string(), "1".to_string())].into(),
            triple: "x86_64-unknown-linux-musl".into(),
            native_host: false,
        };
        let warned = graph_findings(&package(&[], &[]), &g, &lookups);
        let warnings: Vec<&str> = warned
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| f.message.lines().next().unwrap())
            .collect();
        assert_eq!(
            warnings,
            [
                "`app` may link the system library of libgit2-sys (pkg-config may find a system copy for this target): app → git2 → libgit2-sys",
                "`app` may link the system library of libz-sys (pkg-config may find a system copy for this target): app → git2 → libgit2-sys → libz-sys",
                "`app` may link the system library of openssl-sys (pkg-config may find a system copy for this target): app → git2 → libgit2-sys → openssl-sys",
            ]
        );
        assert_eq!(
            warned.len(),
            3,
            "pkg-config may find them all: warnings, no error"
        );
    }

    /// The case: the package's `tls` feature pulls tokio-native-tls.
    #[test]
    fn the_help_names_the_packages_own_feature_first() {
        let mut g = graph(&[
            ("app", &[], &[1]),
            ("tokio-native-tls", &[], &[2]),
            ("native-tls", &[], &[3]),
            ("openssl-sys", &[], &[]),
        ]);
        g.features = vec!["default".into(), "tls".into()];
        let app = package(
            &[("default", &["tls"]), ("tls", &["dep:tokio-native-tls"])],
            &[("tokio-native-tls", "tokio-native-tls", true)],
        );
        let found = graph_findings(&app, &g, &Lookups::default());
        let help: Vec<&str> = found[0].message.lines().skip(1).collect();
        assert_eq!(
            help,
            [
                "help: `app`'s feature `tls` pulls in tokio-native-tls, and the default features turn it on: build without it, `--no-default-features`",
                "help: or turn on native-tls's `vendored` feature, or use rustls (e.g. reqwest with default-features = false and its `rustls-tls` feature)",
            ]
        );
    }

    #[test]
    fn threads_want_an_allocator_and_services_a_sigterm_check() {
        let threaded = graph(&[("app", &[], &[1]), ("tokio", &["rt-multi-thread"], &[])]);
        assert_eq!(checks(&findings(&threaded)), [Check::MuslMalloc]);
        let with_allocator = graph(&[
            ("app", &[], &[1, 2]),
            ("tokio", &["rt-multi-thread"], &[]),
            ("mimalloc", &[], &[]),
        ]);
        assert!(findings(&with_allocator).is_empty());
        // The package's own allocator feature is the fix named.
        let own = package(
            &[("mimalloc", &["dep:mimalloc"])],
            &[("mimalloc", "mimalloc", true)],
        );
        let found = graph_findings(&own, &threaded, &Lookups::default());
        assert_eq!(
            found[0].message.lines().nth(1).unwrap(),
            "help: turn on `app`'s `mimalloc` (`--features mimalloc`), or the `features` setting"
        );
        // A server that only waits for Ctrl-C has tokio's `signal`: still a note, on what to check.
        let server = graph(&[
            ("app", &[], &[1, 2]),
            ("tokio", &["net", "rt-multi-thread", "signal"], &[]),
            ("mimalloc", &[], &[]),
        ]);
        let found = findings(&server);
        assert_eq!(checks(&found), [Check::Sigterm]);
        assert!(
            found[0]
                .message
                .starts_with("`app` looks like a service (tokio's `net` and `rt-multi-thread`)"),
            "{}",
            found[0].message
        );
        // A one-shot tool: no note.
        let tool = graph(&[("app", &[], &[1]), ("clap", &[], &[])]);
        assert!(findings(&tool).is_empty());
        let client = graph(&[("app", &[], &[1]), ("hyper", &["client", "http1"], &[])]);
        assert!(findings(&client).is_empty(), "hyper without `server`");
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
