//! File capabilities (capabilities(7)): the `security.capability` extended attribute that lets
//! a program running as a non-root user do one privileged thing, such as binding port 80, as
//! ko's `linux_capabilities` and `setcap` in a Dockerfile give it. The layer tar carries it as
//! a PAX `SCHILY.xattr.security.capability` record, which Docker, podman and containerd apply
//! when they unpack the layer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use caps::Capability;

/// The extended attribute the kernel reads a file's capabilities from.
pub(crate) const XATTR: &str = "security.capability";

/// `VFS_CAP_REVISION_2` (<linux/capability.h>): two 32-bit words for each set, and no root id
/// (revision 3 names the user namespace's root; engines write revision 2 images as they are).
const REVISION_2: u32 = 0x0200_0000;
/// `VFS_CAP_FLAGS_EFFECTIVE`: the permitted capabilities are raised at exec, so a program
/// that knows nothing of capabilities uses them.
const FLAGS_EFFECTIVE: u32 = 0x0000_0001;

/// What a container gets when its start names no `--cap-add`: Docker's (moby's
/// `oci/caps/defaults.go`) and podman's (containers.conf `default_capabilities`).
const ENGINE_DEFAULTS: [(&str, &[Capability]); 2] = [
    (
        "docker",
        &[
            Capability::CAP_CHOWN,
            Capability::CAP_DAC_OVERRIDE,
            Capability::CAP_FSETID,
            Capability::CAP_FOWNER,
            Capability::CAP_MKNOD,
            Capability::CAP_NET_RAW,
            Capability::CAP_SETGID,
            Capability::CAP_SETUID,
            Capability::CAP_SETFCAP,
            Capability::CAP_SETPCAP,
            Capability::CAP_NET_BIND_SERVICE,
            Capability::CAP_SYS_CHROOT,
            Capability::CAP_KILL,
            Capability::CAP_AUDIT_WRITE,
        ],
    ),
    (
        "podman",
        &[
            Capability::CAP_CHOWN,
            Capability::CAP_DAC_OVERRIDE,
            Capability::CAP_FOWNER,
            Capability::CAP_FSETID,
            Capability::CAP_KILL,
            Capability::CAP_NET_BIND_SERVICE,
            Capability::CAP_SETFCAP,
            Capability::CAP_SETGID,
            Capability::CAP_SETPCAP,
            Capability::CAP_SETUID,
            Capability::CAP_SYS_CHROOT,
        ],
    ),
];

/// One capability, ordered by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cap(Capability);

impl Ord for Cap {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.index().cmp(&other.0.index())
    }
}

impl PartialOrd for Cap {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Cap {
    /// `net_bind_service`, `NET_BIND_SERVICE` or `cap_net_bind_service`: the names of
    /// capabilities(7), in any case, with or without `CAP_`.
    pub(crate) fn parse(name: &str) -> Option<Cap> {
        let upper = name.trim().to_ascii_uppercase();
        let full = match upper.strip_prefix("CAP_") {
            Some(_) => upper,
            None => format!("CAP_{upper}"),
        };
        full.parse().ok().map(Cap)
    }

    /// Lowercase without `CAP_`, as the settings write it: `net_bind_service`.
    pub(crate) fn name(self) -> String {
        self.0.to_string()["CAP_".len()..].to_ascii_lowercase()
    }

    /// Every capability's [`Cap::name`], in the kernel's order: the valid choices.
    pub(crate) fn names() -> Vec<String> {
        let mut all: Vec<Cap> = caps::all().into_iter().map(Cap).collect();
        all.sort();
        all.into_iter().map(Cap::name).collect()
    }
}

impl fmt::Display for Cap {
    /// `CAP_NET_BIND_SERVICE`, as capabilities(7) and the engines' `--cap-add` spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The file capabilities of one program: permitted and effective.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileCaps(BTreeSet<Cap>);

impl FromIterator<Cap> for FileCaps {
    fn from_iter<I: IntoIterator<Item = Cap>>(iter: I) -> Self {
        FileCaps(iter.into_iter().collect())
    }
}

impl FileCaps {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in the kernel's order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().map(|cap| cap.name()).collect()
    }

    /// The value of `security.capability`: `struct vfs_cap_data` of revision 2, little-endian
    /// (magic and flags, then permitted and inheritable of the low and the high 32
    /// capabilities); `None` for no capabilities.
    pub(crate) fn xattr(&self) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let permitted: u64 = self.0.iter().map(|cap| cap.0.bitmask()).sum();
        let words = [
            REVISION_2 | FLAGS_EFFECTIVE,
            permitted as u32,
            0,
            (permitted >> 32) as u32,
            0,
        ];
        Some(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }

    /// Each capability that an engine leaves out of its containers by default, with those
    /// engines.
    pub(crate) fn beyond_engine_defaults(&self) -> Vec<(Cap, Vec<&'static str>)> {
        self.0
            .iter()
            .filter_map(|cap| {
                let lacking: Vec<&str> = ENGINE_DEFAULTS
                    .iter()
                    .filter(|(_, defaults)| !defaults.contains(&cap.0))
                    .map(|(engine, _)| *engine)
                    .collect();
                (!lacking.is_empty()).then_some((*cap, lacking))
            })
            .collect()
    }
}

/// The `capabilities` setting: one set for every binary of the image, or a set per binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Capabilities {
    Every(FileCaps),
    /// Binary name to its capabilities, with where the name is written, for errors.
    Each(BTreeMap<String, (FileCaps, String)>),
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::Every(FileCaps::default())
    }
}

impl Capabilities {
    /// What the program `/app/<bin>` gets.
    pub(crate) fn of(&self, bin: &str) -> FileCaps {
        match self {
            Capabilities::Every(caps) => caps.clone(),
            Capabilities::Each(each) => each.get(bin).map(|(c, _)| c.clone()).unwrap_or_default(),
        }
    }

    /// A table that names a binary `package` does not have is an error.
    pub(crate) fn check_bins(&self, package: &str, bins: &[&str]) -> Result<(), String> {
        let Capabilities::Each(each) = self else {
            return Ok(());
        };
        match each.iter().find(|(bin, _)| !bins.contains(&bin.as_str())) {
            Some((bin, (_, origin))) => Err(format!(
                "{origin}: `{bin}` is not a binary of package `{package}`\nhelp: name one of {}, or give a list for every binary, e.g. capabilities = [\"net_bind_service\"]",
                bins.iter()
                    .map(|b| format!("`{b}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Ok(()),
        }
    }

    /// Each binary with capabilities, and their names: what the provenance states.
    pub(crate) fn stated(&self, bins: &[String]) -> BTreeMap<String, Vec<String>> {
        bins.iter()
            .map(|bin| (bin.clone(), self.of(bin)))
            .filter(|(_, caps)| !caps.is_empty())
            .map(|(bin, caps)| (bin, caps.names()))
            .collect()
    }

    /// Every set, for the warnings.
    pub(crate) fn sets(&self) -> Vec<&FileCaps> {
        match self {
            Capabilities::Every(caps) => vec![caps],
            Capabilities::Each(each) => each.values().map(|(c, _)| c).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> FileCaps {
        names.iter().map(|n| Cap::parse(n).unwrap()).collect()
    }

    #[test]
    fn names_in_any_case_with_or_without_the_prefix() {
        for name in [
            "net_bind_service",
            "NET_BIND_SERVICE",
            "cap_net_bind_service",
            "Cap_Net_Bind_Service",
        ] {
            assert_eq!(
                Cap::parse(name).unwrap().to_string(),
                "CAP_NET_BIND_SERVICE"
            );
        }
        assert_eq!(Cap::parse("CAP_SYS_ADMIN").unwrap().name(), "sys_admin");
        assert!(Cap::parse("net_bind").is_none() && Cap::parse("").is_none());
        let names = Cap::names();
        assert_eq!(names.len(), 41);
        assert_eq!(names[0], "chown");
        assert_eq!(names[10], "net_bind_service");
        assert_eq!(names[40], "checkpoint_restore");
    }

    /// The bytes `setcap cap_net_bind_service+ep` writes (`getfattr -n security.capability`
    /// shows 0sAQAAAgAEAAAAAAAAAAAAAAAAAAA=).
    #[test]
    fn the_attribute_is_vfs_cap_data_revision_2() {
        let xattr = caps(&["net_bind_service"]).xattr().unwrap();
        assert_eq!(
            xattr,
            [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        // The high word holds capabilities 32 and above.
        let high = caps(&["chown", "syslog"]).xattr().unwrap();
        assert_eq!(&high[4..8], &1u32.to_le_bytes());
        assert_eq!(&high[12..16], &(1u32 << 2).to_le_bytes());
        assert_eq!(FileCaps::default().xattr(), None);
    }

    #[test]
    fn capabilities_beyond_the_engines_defaults_are_named_with_the_engines() {
        let beyond = caps(&["net_bind_service", "net_raw", "sys_admin"]).beyond_engine_defaults();
        let beyond: Vec<(String, Vec<&str>)> =
            beyond.into_iter().map(|(c, e)| (c.name(), e)).collect();
        assert_eq!(
            beyond,
            [
                ("net_raw".to_string(), vec!["podman"]),
                ("sys_admin".to_string(), vec!["docker", "podman"]),
            ]
        );
    }

    #[test]
    fn a_table_gives_each_binary_its_own() {
        let each = Capabilities::Each(BTreeMap::from([(
            "web".to_string(),
            (
                caps(&["net_bind_service"]),
                "Cargo.toml:9:20: `capabilities`".to_string(),
            ),
        )]));
        assert_eq!(each.of("web").names(), ["net_bind_service"]);
        assert!(each.of("migrate").is_empty());
        let bins = ["web".to_string(), "migrate".to_string()];
        assert!(each.check_bins("app", &["migrate", "web"]).is_ok());
        assert_eq!(
            each.stated(&bins),
            BTreeMap::from([("web".to_string(), vec!["net_bind_service".to_string()])])
        );
        let error = each.check_bins("app", &["migrate"]).unwrap_err();
        assert!(
            error.starts_with("Cargo.toml:9:20: `capabilities`: `web` is not a binary of package `app`\nhelp: name one of `migrate`"),
            "{error}"
        );
    }
}
