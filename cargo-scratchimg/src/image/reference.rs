//! Image references given with `-t NAME[:TAG]`.

use std::fmt;
use std::str::FromStr;

use anyhow::{Error, Result, anyhow, bail};
use oci_spec::distribution::Reference;

/// A tagged image name such as `hello:0.1.0` or `ghcr.io/acme/hello:v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    reference: Reference,
}

impl ImageRef {
    /// The name Docker shows: `hello:0.1.0` for Docker Hub's library, else the full name.
    pub fn familiar(&self) -> String {
        let repository = self.reference.repository();
        let name = match self.reference.registry() {
            "docker.io" => repository
                .strip_prefix("library/")
                .unwrap_or(repository)
                .to_string(),
            registry => format!("{registry}/{repository}"),
        };
        format!("{name}:{}", self.tag())
    }

    /// The fully qualified name containerd records: `docker.io/library/hello:0.1.0`.
    pub fn qualified(&self) -> String {
        format!(
            "{}/{}:{}",
            self.reference.registry(),
            self.reference.repository(),
            self.tag()
        )
    }

    pub fn tag(&self) -> &str {
        self.reference.tag().unwrap_or("latest")
    }

    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// A tag made from a crate version: SemVer's `+build` is not allowed in tags, `_` is.
    pub fn tag_for_version(version: &str) -> String {
        version.replace('+', "_")
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageRef> {
        let help = "help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`";
        if s.is_empty() {
            bail!("image reference is empty\n{help}");
        }
        if s.contains('@') {
            bail!("`{s}` has a digest; tags name images you build, digests are computed\n{help}");
        }
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.matches(':').count() > 1 {
            bail!("`{s}` has more than one `:TAG`\n{help}");
        }
        let (path, tag) = match s.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (s, None),
        };
        // The first component is a registry only if it looks like a host; docker's rule.
        let repository = match path.split_once('/') {
            Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
            _ => path,
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            bail!("`{s}`: repository name `{repository}` must be lowercase\n{help}");
        }
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                bail!(
                    "`{s}`: tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`\n{help}"
                );
            }
        }
        let reference = Reference::from_str(s)
            .map_err(|e| anyhow!("`{s}` is not a valid image reference: {e}\n{help}"))?;
        Ok(ImageRef { reference })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ImageRef> {
        s.parse()
    }

    #[test]
    fn names_are_normalized_like_docker() {
        let r = parse("hello:0.1.0").unwrap();
        assert_eq!(r.familiar(), "hello:0.1.0");
        assert_eq!(r.qualified(), "docker.io/library/hello:0.1.0");
        assert_eq!(parse("hello").unwrap().familiar(), "hello:latest");
        let r = parse("ghcr.io/acme/hello:v1").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("ghcr.io", "acme/hello", "v1")
        );
        assert_eq!(r.familiar(), "ghcr.io/acme/hello:v1");
        let r = parse("localhost:5000/hello").unwrap();
        assert_eq!((r.registry(), r.tag()), ("localhost:5000", "latest"));
        assert_eq!(
            parse("acme/hello:1.0_build").unwrap().familiar(),
            "acme/hello:1.0_build"
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert!(err("").starts_with("image reference is empty"));
        assert!(err("UPPER:case").contains("`UPPER` must be lowercase"));
        assert!(err("acme/Hello").contains("must be lowercase"));
        assert!(err("a:b:c").contains("more than one `:TAG`"));
        assert!(err("hello:").contains("tag `` must be"));
        assert!(err("hello:-x").contains("tag `-x` must be"));
        assert!(err("hello:a+b").contains("tag `a+b` must be"));
        assert!(err("hello@sha256:abc").contains("has a digest"));
        assert!(err("he llo").contains("not a valid image reference"));
        for e in ["", "UPPER:case", "a:b:c"] {
            assert!(err(e).contains("help: use NAME[:TAG]"), "{e}");
        }
    }

    #[test]
    fn versions_become_valid_tags() {
        let tag = ImageRef::tag_for_version("1.0.0+git.abc");
        assert_eq!(tag, "1.0.0_git.abc");
        assert!(parse(&format!("x:{tag}")).is_ok());
    }
}
