//! `/etc/passwd` and `/etc/group` with distroless's accounts: root, nonroot and nobody.

use crate::image::Owner;

pub(crate) struct Account {
    pub name: &'static str,
    pub id: u64,
    pub home: &'static str,
}

pub(crate) const ROOT: Account = Account {
    name: "root",
    id: 0,
    home: "/root",
};
pub(crate) const NONROOT: Account = Account {
    name: "nonroot",
    id: 65532,
    home: "/home/nonroot",
};
pub(crate) const NOBODY: Account = Account {
    name: "nobody",
    id: 65534,
    home: "/nonexistent",
};

/// The image has no shell: every login shell is one that refuses.
const SHELL: &str = "/sbin/nologin";

const ACCOUNTS: [Account; 3] = [ROOT, NONROOT, NOBODY];

impl Account {
    pub(crate) fn owner(&self) -> Owner {
        Owner {
            uid: self.id,
            gid: self.id,
        }
    }

    /// `uid:gid`, as the image config's `User` wants it: numeric, so no lookup is needed.
    pub(crate) fn user_spec(&self) -> String {
        format!("{0}:{0}", self.id)
    }
}

pub(super) fn passwd() -> String {
    ACCOUNTS
        .iter()
        .map(|a| format!("{0}:x:{1}:{1}:{0}:{2}:{SHELL}\n", a.name, a.id, a.home))
        .collect()
}

pub(super) fn group() -> String {
    ACCOUNTS
        .iter()
        .map(|a| format!("{}:x:{}:\n", a.name, a.id))
        .collect()
}

/// Resolve host names from /etc/hosts first, then DNS, as glibc and Go do without this file.
pub(super) const NSSWITCH: &str = "hosts: files dns\n";

#[cfg(test)]
mod tests {
    #[test]
    fn passwd_and_group_match_distroless() {
        assert_eq!(
            super::passwd(),
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        );
        assert_eq!(
            super::group(),
            "root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n"
        );
        assert_eq!(super::NONROOT.user_spec(), "65532:65532");
    }
}
