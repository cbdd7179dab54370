//! Image references given with `-t NAME[:TAG]`, parsed by the grammar of the distribution
//! project's `reference` package, and normalized as Docker does.
//!
//! Written out rather than taken from oci-spec: its `Reference` compiles one large regex on
//! first use, which costs 60 ms, a third of the time this tool is allowed to add to a build.

use std::fmt;
use std::str::FromStr;

use anyhow::{Error, Result, bail};

/// A tagged image name such as `hello:0.1.0` or `ghcr.io/acme/hello:v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    registry: String,
    repository: String,
    tag: String,
}

const DOCKER_HUB: &str = "docker.io";
const HELP: &str =
    "help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`";

impl ImageRef {
    /// The name Docker shows: `hello:0.1.0` for Docker Hub's library, else the full name.
    pub(crate) fn familiar(&self) -> String {
        let name = match self.registry.as_str() {
            DOCKER_HUB => self
                .repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository),
            _ => return format!("{}/{}:{}", self.registry, self.repository, self.tag),
        };
        format!("{name}:{}", self.tag)
    }

    /// The fully qualified name containerd records: `docker.io/library/hello:0.1.0`.
    pub(crate) fn qualified(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }

    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    pub(crate) fn repository(&self) -> &str {
        &self.repository
    }

    /// A tag made from a crate version: SemVer's `+build` is not allowed in tags, `_` is.
    pub(crate) fn tag_for_version(version: &str) -> String {
        version.replace('+', "_")
    }
}

/// `host[:port]`, each dot-separated label alphanumeric with inner `-`.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut rest = s;
    loop {
        let run = rest.find(|c: char| !alnum(c)).unwrap_or(rest.len());
        if run == 0 {
            return false;
        }
        rest = &rest[run..];
        if rest.is_empty() {
            return true;
        }
        let sep = rest.find(alnum).unwrap_or(rest.len());
        let separator = &rest[..sep];
        let valid = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !valid {
            return false;
        }
        rest = &rest[sep..];
    }
}

fn is_tag(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    s.len() <= 128 && s.starts_with(word) && s.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// A repository without a tag, such as `ghcr.io/acme/hello`: what `--push` and
/// `SCRATCHIMG_REPO` may name, to be completed with the tags of the image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Repository {
    registry: String,
    repository: String,
}

impl Repository {
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    pub(crate) fn repository(&self) -> &str {
        &self.repository
    }

    /// This repository under `tag`, which must already be valid.
    pub(crate) fn tagged(&self, tag: &str) -> ImageRef {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: tag.to_string(),
        }
    }

    /// `PREFIX/NAME`, where the prefix is a registry with an optional path, like `KO_DOCKER_REPO`.
    pub(crate) fn under_prefix(prefix: &str, name: &str) -> Result<Repository> {
        let joined = format!("{}/{name}", prefix.trim_end_matches('/'));
        parse_name(&joined, &joined)
    }

    /// Whether `s` names its registry, i.e. would not default to Docker Hub.
    pub(crate) fn names_registry(s: &str) -> bool {
        s.split_once('/')
            .is_some_and(|(host, _)| host.contains(['.', ':']) || host == "localhost")
    }
}

/// Splits `NAME[:TAG]` into the name and the tag, if one was given.
pub(crate) fn split_tag(s: &str) -> Result<(&str, Option<&str>)> {
    if s.is_empty() {
        bail!("image reference is empty\n{HELP}");
    }
    if s.contains('@') {
        bail!("`{s}` has a digest; tags name images you build, digests are computed\n{HELP}");
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    if last.matches(':').count() > 1 {
        bail!("`{s}` has more than one `:TAG`\n{HELP}");
    }
    Ok(match last.rsplit_once(':') {
        Some((_, tag)) => (&s[..s.len() - tag.len() - 1], Some(tag)),
        None => (s, None),
    })
}

/// The registry and repository of `name` (no tag); `whole` is what the user wrote, for errors.
fn parse_name(name: &str, whole: &str) -> Result<Repository> {
    let s = whole;
    // The first component is a registry only if it looks like a host: Docker's rule.
    let (registry, path) = match name.split_once('/') {
        Some((host, rest)) if Repository::names_registry(name) => {
            if !is_domain(host) {
                bail!("`{s}`: `{host}` is not a valid registry host\n{HELP}");
            }
            (host, rest)
        }
        _ => (DOCKER_HUB, name),
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        bail!("`{s}`: repository name `{path}` must be lowercase\n{HELP}");
    }
    if let Some(bad) = path.split('/').find(|c| !is_path_component(c)) {
        bail!(
            "`{s}`: `{bad}` is not a valid repository name component \
             (lowercase letters and digits, joined by `.`, `_`, `__` or `-`)\n{HELP}"
        );
    }
    if registry.len() + 1 + path.len() > 255 {
        bail!("`{s}` is longer than 255 characters\n{HELP}");
    }
    let repository = match (registry, path.contains('/')) {
        (DOCKER_HUB, false) => format!("library/{path}"),
        _ => path.to_string(),
    };
    Ok(Repository {
        registry: registry.to_string(),
        repository,
    })
}

fn check_tag(s: &str, tag: &str) -> Result<()> {
    if !is_tag(tag) {
        bail!(
            "`{s}`: tag `{tag}` must be 1 to 128 letters, digits, `_`, `.` or `-`, \
             not starting with `.` or `-`\n{HELP}"
        );
    }
    Ok(())
}

impl FromStr for Repository {
    type Err = Error;

    fn from_str(s: &str) -> Result<Repository> {
        match split_tag(s)? {
            (name, None) => parse_name(name, s),
            (_, Some(_)) => bail!("`{s}` has a tag where only a repository is expected\n{HELP}"),
        }
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImageRef> {
        let (name, tag) = split_tag(s)?;
        let tag = tag.unwrap_or("latest");
        check_tag(s, tag)?;
        Ok(parse_name(name, s)?.tagged(tag))
    }
}

impl ImageRef {
    /// The repository this reference tags.
    pub(crate) fn repo(&self) -> Repository {
        Repository {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
        }
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
        assert!(err("he llo").contains("`he llo` is not a valid repository name component"));
        assert!(err("acme//hello").contains("`` is not a valid"));
        assert!(err("acme/-hello").contains("`-hello` is not a valid"));
        assert!(err("acme/hello.").contains("`hello.` is not a valid"));
        assert!(err("bad_host.io:x/hello").contains("not a valid registry host"));
        assert!(err(&"a".repeat(300)).contains("longer than 255"));
        for e in ["", "UPPER:case", "a:b:c"] {
            assert!(err(e).contains("help: use NAME[:TAG]"), "{e}");
        }
    }

    #[test]
    fn repositories_take_tags_and_prefixes() {
        let repo: Repository = "localhost:5000/acme/hello".parse().unwrap();
        assert_eq!(repo.tagged("v1").familiar(), "localhost:5000/acme/hello:v1");
        assert!("localhost:5000/hello:v1".parse::<Repository>().is_err());
        let repo = Repository::under_prefix("ghcr.io/acme/", "hello").unwrap();
        assert_eq!(repo.tagged("v1").qualified(), "ghcr.io/acme/hello:v1");
        assert_eq!(
            Repository::under_prefix("acme", "hello")
                .unwrap()
                .tagged("v1")
                .qualified(),
            "docker.io/acme/hello:v1"
        );
        assert!(Repository::under_prefix("ghcr.io/Acme", "hello").is_err());
        assert!(Repository::names_registry("127.0.0.1:5000/x"));
        assert!(!Repository::names_registry("acme/x"));
        let (name, tag) = split_tag("localhost:5000/hello").unwrap();
        assert_eq!((name, tag), ("localhost:5000/hello", None));
        assert_eq!(split_tag("a/b:c").unwrap(), ("a/b", Some("c")));
    }

    #[test]
    fn versions_become_valid_tags() {
        let tag = ImageRef::tag_for_version("1.0.0+git.abc");
        assert_eq!(tag, "1.0.0_git.abc");
        assert!(parse(&format!("x:{tag}")).is_ok());
    }
}
