//! An image's tags, and the references `--push` names: all checked before anything is built.

use anyhow::{Context, Result};

use crate::config::Settings;
use crate::image::{ImageRef, Repository, split_tag};
use crate::util::unique;

/// `-t` values; else `name` with each of `tags` (or the version); else `<bin>:<version>`.
/// All checked before anything is built.
pub(super) fn image_tags(
    given: &[String],
    settings: &Settings,
    default_name: &str,
    version: &str,
) -> Result<Vec<ImageRef>> {
    if !given.is_empty() {
        return given.iter().map(|tag| tag.parse()).collect();
    }
    // Repository names are lowercase; binary names need not be.
    let name = settings
        .name
        .clone()
        .unwrap_or_else(|| default_name.to_lowercase());
    let tags = if settings.tags.is_empty() {
        vec![ImageRef::tag_for_version(version)]
    } else {
        settings.tags.clone()
    };
    tags.iter()
        .map(|tag| {
            format!("{name}:{tag}").parse().with_context(|| {
                format!("`{name}` does not make a valid image name\nhelp: name the image with -t NAME[:TAG] or `name` in [package.metadata.scratchimg]")
            })
        })
        .collect()
}

/// The references `--push` names, completed with the image's tags where they have none, and
/// prefixed with `SCRATCHIMG_REPO` where they name no registry.
pub(super) fn push_refs(
    given: &[String],
    default_repo: Option<&str>,
    tags: &[ImageRef],
) -> Result<Vec<ImageRef>> {
    let mut refs: Vec<ImageRef> = Vec::new();
    for value in given {
        let context = || format!("invalid --push `{value}`");
        if value.is_empty() {
            let prefix = default_repo.context(
                "--push without a reference needs SCRATCHIMG_REPO\n\
                 help: set SCRATCHIMG_REPO to a registry and namespace, e.g. `ghcr.io/acme`, or give --push REGISTRY/REPO[:TAG]",
            )?;
            for tag in tags {
                let name = tag
                    .repository()
                    .rsplit('/')
                    .next()
                    .unwrap_or(tag.repository());
                let repo = Repository::under_prefix(prefix, name)
                    .with_context(|| format!("invalid SCRATCHIMG_REPO `{prefix}`"))?;
                refs.push(repo.tagged(tag.tag()));
            }
            continue;
        }
        let (name, tag) = split_tag(value).with_context(context)?;
        let name = match default_repo {
            Some(prefix) if !Repository::names_registry(name) => {
                format!("{}/{name}", prefix.trim_end_matches('/'))
            }
            _ => name.to_string(),
        };
        match tag {
            Some(tag) => refs.push(format!("{name}:{tag}").parse().with_context(context)?),
            None => {
                let repo: Repository = name.parse().with_context(context)?;
                refs.extend(tags.iter().map(|t| repo.tagged(t.tag())));
            }
        }
    }
    Ok(unique(refs))
}

/// The registries `--push` names, known before the image's tags are: the tags change
/// repositories, never registries. Empty when a reference is invalid; `push_refs` says why.
pub(super) fn push_hosts(given: &[String], default_repo: Option<&str>) -> Vec<String> {
    let any_tag: ImageRef = "any:latest".parse().expect("a valid reference");
    let refs = push_refs(given, default_repo, &[any_tag]).unwrap_or_default();
    unique(refs.iter().map(|r| r.registry().to_string()))
}

/// An image as a tag names it: its package and binaries, as errors say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tagged<'a> {
    pub package: &'a str,
    pub bins: &'a [String],
    /// Its tags and the references it is pushed as.
    pub refs: Vec<&'a ImageRef>,
}

impl Tagged<'_> {
    fn describe(&self) -> String {
        match self.bins {
            [bin] => format!("package {} with binary {bin}", self.package),
            bins => format!("package {} with binaries {}", self.package, bins.join(", ")),
        }
    }
}

/// Refuses two different images under one name and tag, before anything is built: the second
/// push or load would take the tag from the first, leaving it untagged (and a registry's
/// retention may delete it). The same image asked for twice is one image.
pub(super) fn one_image_per_tag(images: &[Tagged<'_>]) -> Result<()> {
    for (i, first) in images.iter().enumerate() {
        for second in &images[i + 1..] {
            if first.package == second.package && first.bins == second.bins {
                continue;
            }
            if let Some(shared) = first.refs.iter().find(|r| second.refs.contains(r)) {
                anyhow::bail!(
                    "two images would be {}: the one of {} and the one of {}\nhelp: ask for each image one way (e.g. scratchimg://PACKAGE/BIN everywhere), or give them different `name`s in [package.metadata.scratchimg]",
                    shared.familiar(),
                    first.describe(),
                    second.describe()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, ImageFlags};

    fn settings(name: Option<&str>, tags: &[&str]) -> Settings {
        let mut s = config::resolve(&[], &ImageFlags::default(), Path::new("/")).unwrap();
        s.name = name.map(str::to_string);
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    #[test]
    fn tags_come_from_flags_then_settings_then_the_binary() {
        let familiar =
            |tags: Vec<ImageRef>| tags.iter().map(ImageRef::familiar).collect::<Vec<_>>();
        let none = settings(None, &[]);
        assert_eq!(
            familiar(image_tags(&[], &none, "hello", "0.1.0+build.7").unwrap()),
            ["hello:0.1.0_build.7"]
        );
        assert_eq!(
            familiar(image_tags(&[], &none, "My_Tool", "1.0.0").unwrap()),
            ["my_tool:1.0.0"]
        );
        let named = settings(Some("ghcr.io/acme/web"), &["latest", "v1"]);
        assert_eq!(
            familiar(image_tags(&[], &named, "web", "1.0.0").unwrap()),
            ["ghcr.io/acme/web:latest", "ghcr.io/acme/web:v1"]
        );
        let name_only = settings(Some("acme/web"), &[]);
        assert_eq!(
            familiar(image_tags(&[], &name_only, "web", "1.0.0").unwrap()),
            ["acme/web:1.0.0"]
        );
        assert_eq!(
            familiar(image_tags(&["x:1".into()], &named, "web", "1.0.0").unwrap()),
            ["x:1"]
        );
        assert!(image_tags(&["ok:1".into(), "a:b:c".into()], &none, "hello", "0.1.0").is_err());
    }

    #[test]
    fn push_references_take_tags_and_the_default_repo() {
        let none = settings(None, &[]);
        let tags = image_tags(
            &["hello:0.1.0".into(), "acme/hello:latest".into()],
            &none,
            "x",
            "1",
        )
        .unwrap();
        let refs = |given: &[&str], repo: Option<&str>| {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            push_refs(&given, repo, &tags)
                .map(|r| r.iter().map(ImageRef::familiar).collect::<Vec<_>>())
        };
        assert_eq!(
            refs(&["localhost:5000/hello"], None).unwrap(),
            ["localhost:5000/hello:0.1.0", "localhost:5000/hello:latest"]
        );
        assert_eq!(
            refs(&["ghcr.io/acme/hello:v1", "ghcr.io/acme/hello:v1"], None).unwrap(),
            ["ghcr.io/acme/hello:v1"]
        );
        assert_eq!(
            refs(&[""], Some("ghcr.io/acme/")).unwrap(),
            ["ghcr.io/acme/hello:0.1.0", "ghcr.io/acme/hello:latest"]
        );
        assert_eq!(
            refs(&["svc:v2", "quay.io/o/svc"], Some("ghcr.io/acme")).unwrap(),
            [
                "ghcr.io/acme/svc:v2",
                "quay.io/o/svc:0.1.0",
                "quay.io/o/svc:latest"
            ]
        );
        assert_eq!(refs(&["acme/hello:1"], None).unwrap(), ["acme/hello:1"]);
        let error = |given: &[&str], repo| format!("{:#}", refs(given, repo).unwrap_err());
        assert!(error(&[""], None).contains("needs SCRATCHIMG_REPO"));
        assert!(
            error(&["localhost:5000/Hello"], None)
                .starts_with("invalid --push `localhost:5000/Hello`")
        );
        assert!(error(&["reg.io/a@sha256:00"], None).contains("has a digest"));
        assert!(error(&[""], Some("ghcr.io/Acme")).starts_with("invalid SCRATCHIMG_REPO"));
        let hosts = |given: &[&str], repo| {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            push_hosts(&given, repo)
        };
        assert_eq!(
            hosts(&["a.io/x", "b.io/y:1", "a.io/z", "w"], Some("b.io/team")),
            ["a.io", "b.io"]
        );
        assert_eq!(hosts(&["", "acme/w"], None), Vec::<String>::new());
        assert_eq!(hosts(&["acme/w"], None), ["docker.io"]);
    }

    #[test]
    fn one_tag_names_one_image() {
        let worker: ImageRef = "reg.io/acme/worker:0.1.0".parse().unwrap();
        let api: ImageRef = "reg.io/acme/api:0.1.0".parse().unwrap();
        let (both, one) = (
            vec!["worker".to_string(), "migrate".to_string()],
            vec!["worker".to_string()],
        );
        let image = |package, bins, refs| Tagged {
            package,
            bins,
            refs,
        };
        // The same image twice, and different images apart: fine.
        one_image_per_tag(&[
            image("worker", &one, vec![&worker]),
            image("worker", &one, vec![&worker]),
            image("api", &one, vec![&api]),
        ])
        .unwrap();
        let error = one_image_per_tag(&[
            image("api", &one, vec![&api]),
            image("worker", &both, vec![&worker]),
            image("worker", &one, vec![&worker]),
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "two images would be reg.io/acme/worker:0.1.0: the one of package worker with binaries worker, migrate and the one of package worker with binary worker\nhelp: ask for each image one way (e.g. scratchimg://PACKAGE/BIN everywhere), or give them different `name`s in [package.metadata.scratchimg]"
        );
    }
}
