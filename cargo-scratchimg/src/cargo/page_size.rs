//! arm64 hosts with larger pages. jemalloc learns the page size when it is configured, at build
//! time, and one built for 4 KiB pages aborts at start (`<jemalloc>: Unsupported system page
//! size`) on arm64 hosts with 16 or 64 KiB pages: Apple-silicon Linux VMs, some arm64 servers.
//! Built for 64 KiB pages (lg-page 16), it runs on all three. So aarch64 builds that link
//! tikv-jemalloc-sys get `JEMALLOC_SYS_WITH_LG_PAGE=16`, which its build script passes to
//! configure as `--with-lg-page`, unless the user set it.

use crate::cargo::graph::Graphs;
use crate::env::JEMALLOC_LG_PAGE;
use crate::target::{Arch, Target};

/// log2 of 64 KiB, the largest page arm64 Linux has.
const LG_PAGE: &str = "16";
const JEMALLOC_SYS: &str = "tikv-jemalloc-sys";

/// What this tool sets for cargo on `target`, beside its linker's variables: the page size of
/// jemalloc on arm64 when a package of the build links it and `user_set` is false.
pub(crate) fn build_env(target: &Target, graphs: &Graphs, user_set: bool) -> Vec<(String, String)> {
    let links_jemalloc = graphs
        .values()
        .any(|graph| graph.runtime().any(|(_, c)| c.name == JEMALLOC_SYS));
    if target.arch == Arch::Arm64 && links_jemalloc && !user_set {
        vec![(JEMALLOC_LG_PAGE.to_string(), LG_PAGE.to_string())]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{Crate, CrateGraph, Kind, Source};

    fn graphs(names: &[&str]) -> Graphs {
        let crates = names
            .iter()
            .map(|name| Crate {
                name: name.to_string(),
                version: "1.0.0".into(),
                source: Source::CratesIo,
                license: None,
                checksum: None,
                kind: Kind::Runtime,
                dependencies: Vec::new(),
                features: Vec::new(),
            })
            .collect();
        Graphs::from([(
            "app".to_string(),
            CrateGraph {
                crates,
                root: 0,
                features: Vec::new(),
            },
        )])
    }

    #[test]
    fn arm64_builds_of_jemalloc_get_64_kib_pages_unless_the_user_chose() {
        let arm64 = Target::parse("aarch64-unknown-linux-musl").unwrap();
        let amd64 = Target::parse("x86_64-unknown-linux-musl").unwrap();
        let jemalloc = graphs(&["app", "tikv-jemallocator", "tikv-jemalloc-sys"]);
        assert_eq!(
            build_env(&arm64, &jemalloc, false),
            [("JEMALLOC_SYS_WITH_LG_PAGE".to_string(), "16".to_string())]
        );
        assert!(build_env(&arm64, &jemalloc, true).is_empty());
        assert!(build_env(&amd64, &jemalloc, false).is_empty());
        assert!(build_env(&arm64, &graphs(&["app", "mimalloc"]), false).is_empty());
    }
}
