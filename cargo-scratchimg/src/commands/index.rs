//! `cargo scratchimg index --push REF SOURCE…`: one multi-platform index of images built on
//! different machines, the way `docker buildx imagetools create` merges them. Each source is a
//! pushed image or a tar or OCI directory the tool wrote (read back blob by blob); the
//! platforms come from the configs; the index is the one a build of all platforms would make.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Digest, ImageIndex, ImageManifest, MediaType, Platform};
use serde::Serialize;

use crate::env::Env;
use crate::image::{
    Blob, DOCUMENT_LIMIT, INDEX_LIMIT, ImageRef, IndexEntry, LAYERS_LIMIT, Repository,
    checked_platform, merged_index, parse, platform_name, platform_of, shared_platform,
};
use crate::local_image;
use crate::registry::{ClientOptions, Pulled, Registry, Session};
use crate::report::Reporter;
use crate::sink::{BlobSource, SourceImage, push_index};
use crate::text::one_line;

/// What `index` is asked to merge, and where it goes.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// `REGISTRY/REPO:TAG`.
    pub push: String,
    /// Pushed references (`REGISTRY/REPO:TAG`, `REGISTRY/REPO@sha256:…`), tars, OCI directories.
    pub sources: Vec<String>,
    pub registry: ClientOptions,
}

/// What `index` pushed: the value `--message-format json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexOutcome {
    pub digest: String,
    /// `REF@sha256:…` of the tag pushed.
    pub pushed: Vec<String>,
    pub images: Vec<IndexImage>,
}

/// One platform's image of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexImage {
    pub platform: String,
    pub digest: String,
    /// Where it came from, as given.
    pub source: String,
}

/// Merges the sources into one index and pushes it.
pub fn index(options: &IndexOptions, env: &Env, report: &dyn Reporter) -> Result<IndexOutcome> {
    let started = Instant::now();
    let tag: ImageRef = options
        .push
        .parse()
        .with_context(|| format!("--push `{}` is not a reference", options.push))?;
    let mut registries: Vec<Registry> = Vec::new();
    let mut connect = |host: &str| -> Result<usize> {
        if let Some(i) = registries.iter().position(|r| r.host() == host) {
            return Ok(i);
        }
        registries.push(Registry::connect(host, &options.registry, report)?);
        Ok(registries.len() - 1)
    };
    // Every registry first: a wrong host or password fails before anything is read.
    connect(tag.registry())?;
    let mut found: Vec<Found> = Vec::new();
    for source in &options.sources {
        let path = env.cwd.join(source);
        if path.exists() {
            found.extend(from_file(&path, source)?);
        } else {
            let (repository, reference) = remote_reference(source)?;
            connect(repository.registry())?;
            found.push(Found::Remote {
                source: source.clone(),
                repository,
                reference,
            });
        }
    }
    let registries = registries;
    let registry_of = |host: &str| {
        registries
            .iter()
            .find(|r| r.host() == host)
            .expect("every registry was connected")
    };
    let mut images: Vec<(SourceImage, IndexEntry, String)> = Vec::new();
    for found in found {
        match found {
            Found::Local { image, source } => images.push(image_of_file(*image, source)?),
            Found::Remote {
                source,
                repository,
                reference,
            } => {
                let registry = registry_of(repository.registry());
                images.extend(pull(registry, &repository, &reference, &source, report)?);
            }
        }
    }
    let entries: Vec<IndexEntry> = images.iter().map(|(_, entry, _)| entry.clone()).collect();
    let index = merged_index(&entries)?;
    for (_, entry, source) in &images {
        report.status(
            "Indexing",
            &format!(
                "{:<15} {}  from {source}",
                platform_name(&entry.platform),
                entry.manifest.digest()
            ),
        );
    }
    let (sources, described): (Vec<SourceImage>, Vec<(IndexEntry, String)>) = images
        .into_iter()
        .map(|(image, entry, source)| (image, (entry, source)))
        .unzip();
    let merged = push_index(registry_of(tag.registry()), &tag, &sources, &index, report)?;
    let pushed = format!("{tag}@{}", index.digest());
    report.status(
        "Pushed",
        &format!(
            "{pushed} in {:.2}s: {} blob{} uploaded, {} mounted, {} already there",
            started.elapsed().as_secs_f64(),
            merged.uploaded,
            if merged.uploaded == 1 { "" } else { "s" },
            merged.mounted,
            merged.existing
        ),
    );
    let mut listed: Vec<IndexImage> = described
        .iter()
        .map(|(entry, source)| IndexImage {
            platform: platform_name(&entry.platform),
            digest: entry.manifest.digest().to_string(),
            source: source.clone(),
        })
        .collect();
    listed.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(IndexOutcome {
        digest: index.digest().to_string(),
        pushed: vec![pushed],
        images: listed,
    })
}

/// A source, found.
enum Found {
    /// One image of a file the tool wrote, with all its blobs.
    Local {
        image: Box<crate::image::Image>,
        source: String,
    },
    Remote {
        source: String,
        repository: Repository,
        /// A tag or `sha256:…`.
        reference: String,
    },
}

/// The images of a tar or OCI directory the tool wrote, read back and checked.
fn from_file(path: &Path, source: &str) -> Result<Vec<Found>> {
    let artifact = if path.is_dir() {
        local_image::read_oci_dir(path)
    } else {
        local_image::read_archive(path)
    }
    .with_context(|| {
        format!(
            "could not read the image in {}\nhelp: give a tar or OCI directory that cargo scratchimg wrote, or a pushed reference",
            path.display()
        )
    })?;
    Ok(artifact
        .images()
        .iter()
        .map(|image| Found::Local {
            image: Box::new(image.clone()),
            source: source.to_string(),
        })
        .collect())
}

fn image_of_file(
    image: crate::image::Image,
    source: String,
) -> Result<(SourceImage<'static>, IndexEntry, String)> {
    let entry = IndexEntry {
        manifest: image.manifest().descriptor().clone(),
        platform: platform_of(image.config().data())?,
    };
    let blobs = image.blobs().cloned().map(BlobSource::Local).collect();
    Ok((
        SourceImage {
            manifest: image.manifest().clone(),
            blobs,
        },
        entry,
        source,
    ))
}

/// `REGISTRY/REPO:TAG` or `REGISTRY/REPO@sha256:…`: the repository, and the tag or digest.
fn remote_reference(source: &str) -> Result<(Repository, String)> {
    let not = || {
        format!(
            "`{source}` is neither a file nor an image reference\nhelp: give a tar or OCI directory written by cargo scratchimg, REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…"
        )
    };
    if let Some((name, digest)) = source.split_once('@') {
        let repository: Repository = name.parse().with_context(not)?;
        if !digest.starts_with("sha256:") || digest.len() != 71 {
            bail!(not());
        }
        return Ok((repository, digest.to_string()));
    }
    let image: ImageRef = source.parse().with_context(not)?;
    Ok((image.repo(), image.tag().to_string()))
}

/// The image (or each image of the index) `reference` names in `repository`. An index's
/// entries are collapsed to one per image and their platforms checked before any is fetched;
/// each manifest and config is read within [`DOCUMENT_LIMIT`], and the config must name the
/// platform the index gave.
fn pull<'r>(
    registry: &'r Registry,
    repository: &Repository,
    reference: &str,
    source: &str,
    report: &'r dyn Reporter,
) -> Result<Vec<(SourceImage<'r>, IndexEntry, String)>> {
    let session = registry.read_session(repository.repository(), report)?;
    let top = session
        .get_manifest(reference)
        .with_context(|| format!("could not pull {source}"))?
        .with_context(|| format!("{source} is not in its registry"))?;
    let pulled: Vec<(Pulled, Option<Platform>)> = if is_index(&top.media_type) {
        let index: ImageIndex = parse(&top.bytes, &format!("the index of {source}"))?;
        listed_images(&index, source)?
            .into_iter()
            .map(|(digest, platform)| {
                let pulled = session.get_manifest(digest.as_ref())?.with_context(|| {
                    format!("{source} names manifest {digest} its registry does not have")
                })?;
                Ok((pulled, platform))
            })
            .collect::<Result<_>>()?
    } else {
        vec![(top, None)]
    };
    pulled
        .into_iter()
        .map(|(pulled, listed_as)| {
            let (image, entry) = remote_image(&session, registry, repository, pulled, source)?;
            if let Some(listed_as) = listed_as
                && platform_name(&listed_as) != platform_name(&entry.platform)
            {
                bail!(
                    "{source} lists {} as {} but its config says {}",
                    entry.manifest.digest(),
                    platform_name(&listed_as),
                    platform_name(&entry.platform)
                );
            }
            Ok((image, entry, source.to_string()))
        })
        .collect()
}

/// The images a source index lists, each once (a manifest listed many times is fetched once),
/// with the platform each is listed for, checked, at most [`INDEX_LIMIT`]; two images listed
/// for one platform are refused here, before anything is fetched.
fn listed_images(index: &ImageIndex, source: &str) -> Result<Vec<(Digest, Option<Platform>)>> {
    let mut listed: Vec<(Digest, Option<Platform>)> = Vec::new();
    for descriptor in index.manifests() {
        let digest = descriptor.digest();
        if listed.iter().any(|(seen, _)| seen == digest) {
            continue;
        }
        ensure!(
            listed.len() < INDEX_LIMIT,
            "{source} lists more than {INDEX_LIMIT} images\nhelp: give an index of one image per platform"
        );
        let platform = descriptor
            .platform()
            .as_ref()
            .map(checked_platform)
            .transpose()
            .with_context(|| {
                format!("{source} lists manifest {digest} for a platform it cannot be")
            })?;
        listed.push((digest.clone(), platform));
    }
    let mut names: Vec<(String, &Digest)> = listed
        .iter()
        .filter_map(|(digest, platform)| Some((platform_name(platform.as_ref()?), digest)))
        .collect();
    if let Some((platform, a, b)) = shared_platform(&mut names) {
        bail!(
            "{source} lists two images for {platform}: {a} and {b}\nhelp: give one image per platform"
        );
    }
    Ok(listed)
}

/// One image manifest of a registry, its config read (within [`DOCUMENT_LIMIT`], whatever
/// the manifest says its size is) for the platform; its blobs stay in the registry.
fn remote_image<'r>(
    session: &Session<'_>,
    registry: &'r Registry,
    repository: &Repository,
    pulled: Pulled,
    source: &str,
) -> Result<(SourceImage<'r>, IndexEntry)> {
    let digest = &pulled.digest;
    if !is_image_manifest(&pulled.media_type) {
        bail!(
            "{source}: {digest} is a {}, not an image manifest",
            one_line(&pulled.media_type, 100)
        );
    }
    let manifest_blob = blob(&pulled.media_type, pulled.bytes)?;
    let what = format!("the manifest {digest} of {source}");
    let manifest: ImageManifest = parse(manifest_blob.data(), &what)?;
    ensure!(
        manifest.layers().len() <= LAYERS_LIMIT,
        "{what} lists {} layers, more than the {LAYERS_LIMIT} an image may have",
        manifest.layers().len()
    );
    let config = manifest.config();
    ensure!(
        config.size() <= DOCUMENT_LIMIT,
        "{what} says its config is {} bytes, more than the {DOCUMENT_LIMIT} a config may be",
        config.size()
    );
    let config_bytes = session
        .get_blob(config.digest().as_ref(), config.size())
        .with_context(|| format!("could not read the config of {what}"))?;
    let entry = IndexEntry {
        manifest: manifest_blob.descriptor().clone(),
        platform: platform_of(&config_bytes).with_context(|| format!("in the config of {what}"))?,
    };
    let mut blobs: Vec<BlobSource<'r>> = Vec::new();
    for descriptor in std::iter::once(config).chain(manifest.layers()) {
        if blobs.iter().any(|b| b.digest() == descriptor.digest()) {
            continue;
        }
        blobs.push(BlobSource::Remote {
            descriptor: descriptor.clone(),
            registry,
            repository: repository.repository().to_string(),
        });
    }
    Ok((
        SourceImage {
            manifest: manifest_blob,
            blobs,
        },
        entry,
    ))
}

fn is_index(media_type: &str) -> bool {
    media_type == MediaType::ImageIndex.to_string()
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

fn is_image_manifest(media_type: &str) -> bool {
    media_type == MediaType::ImageManifest.to_string()
        || media_type == "application/vnd.docker.distribution.manifest.v2+json"
}

fn blob(media_type: &str, bytes: Vec<u8>) -> Result<Blob> {
    let media_type: MediaType = media_type.into();
    Ok(Blob::new(media_type, bytes))
}
