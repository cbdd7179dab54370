//! Step 3: each image, or index of one image per platform: the base layer, the `files` layer,
//! and the app layer with the binaries and their SBOMs; config, manifest, annotations.

use anyhow::{Context, Result};

use super::Plan;
use super::compile::PlatformBuild;
use super::plan::ImagePlan;
use crate::cache::LayerCache;
use crate::cargo::BuiltBinary;
use crate::config;
use crate::image::{Artifact, EntryKind, Image, ImageBuilder, Index, Owner, sha256, validate};
use crate::provenance::{self, Provenance};
use crate::report::Reporter;
use crate::rootfs;
use crate::sbom::{self, Sbom, Subject};
use crate::target::Target;

/// An image made, with the plan it was made from.
pub(crate) struct AssembledImage {
    pub image: ImagePlan,
    pub artifact: Artifact,
    pub sboms: Vec<SbomDocument>,
}

/// One binary's SBOM for one platform, as the app layer holds it.
pub(crate) struct SbomDocument {
    pub target: Target,
    pub bin: String,
    pub bytes: Vec<u8>,
}

/// Assembles every image from what the platforms' builds gave.
pub(crate) fn assemble(
    plan: &Plan,
    images: Vec<ImagePlan>,
    builds: &[PlatformBuild],
    report: &dyn Reporter,
) -> Result<Vec<AssembledImage>> {
    images
        .into_iter()
        .map(|image| {
            let (artifact, sboms) = assemble_one(plan, &image, builds, report)?;
            Ok(AssembledImage {
                image,
                artifact,
                sboms,
            })
        })
        .collect()
}

/// One image's artifact: an image, or an index of one image per platform.
pub(crate) fn assemble_one(
    plan: &Plan,
    image: &ImagePlan,
    builds: &[PlatformBuild],
    report: &dyn Reporter,
) -> Result<(Artifact, Vec<SbomDocument>)> {
    let cache = LayerCache::open(&plan.layout);
    let base = plan.base_layer(&image.settings.base);
    report.status("Packing", &base.comment());
    let mut images = Vec::new();
    let mut sboms = Vec::new();
    for build in builds {
        let binaries: Vec<BuiltBinary> = build
            .binaries_of(&image.package.name, &image.bins)
            .cloned()
            .collect();
        let (packed, documents) = pack(plan, image, build, &binaries, &cache, report)?;
        images.push(packed);
        sboms.extend(documents);
    }
    let artifact = match images.len() {
        1 => Artifact::Image(images.pop().expect("one image")),
        _ => Artifact::Index(Index::new(images)?),
    };
    Ok((artifact, sboms))
}

/// The image of one platform: base, files and app layers, config and manifest; and the SBOM
/// document of each binary, which the app layer holds too.
fn pack(
    plan: &Plan,
    image: &ImagePlan,
    build: &PlatformBuild,
    binaries: &[BuiltBinary],
    cache: &LayerCache,
    report: &dyn Reporter,
) -> Result<(Image, Vec<SbomDocument>)> {
    let target = &build.target;
    let platform = plan
        .platforms
        .iter()
        .find(|p| p.target == *target)
        .expect("a build of every platform of the plan");
    let graph = platform.graphs.get(image.package.name.as_str());
    let created = image.date.timestamp()?;
    let base = plan.base_layer(&image.settings.base).clone();
    let mut builder = ImageBuilder::new(target.arch, created).layer(base);
    if let Some(files) = &image.files {
        let count = files
            .entries()
            .filter(|(_, e)| matches!(e.kind, EntryKind::File(_)))
            .count();
        let comment = format!("files: {count} from `files` settings");
        let (layer, _) = cache.layer(files, comment, report)?;
        report.status("Packing", &layer.comment());
        builder = builder.layer(layer);
    }
    let mut app_files = rootfs::app_files(binaries, image.date.seconds)?;
    let mut comment = rootfs::app_comment(binaries);
    let mut documents = Vec::new();
    if let (Some(format), Some(graph)) = (plan.sbom, graph) {
        for binary in binaries {
            let bytes = Sbom {
                subject: Subject {
                    image: image.tags[0].familiar(),
                    path: rootfs::app_path(&binary.name),
                    sha256: sha256(&binary.bytes).digest().to_string(),
                },
                crates: graph.clone(),
                base: rootfs::base_components(&image.settings.base),
                created,
            }
            .render(format)?;
            let file = sbom::image_path(&binary.name, format);
            app_files.file(&file, bytes.clone(), 0o644, Owner::ROOT)?;
            comment.push_str(&format!(" + /{file}"));
            documents.push(SbomDocument {
                target: target.clone(),
                bin: binary.name.clone(),
                bytes,
            });
        }
    }
    let (app, hit) = cache.layer(&app_files, comment, report)?;
    report.status("Packing", &app.comment());
    report.verbose("Cache", &|| {
        format!("{} layer {}", hit.verb(), app.blob().digest())
    });

    let derived = config::standard_annotations(
        &image.package,
        image.git.revision.as_deref(),
        &created.to_string(),
    );
    // Ours under dev.cargo-scratchimg.*; for org.opencontainers.image.* keys the values derived
    // from Cargo.toml win (source falls back to the git remote), the user's over all.
    let provenance = Provenance {
        source: provenance::source(
            image.package.repository.as_deref(),
            image.git.origin.as_deref(),
        ),
        toolchain: plan.rustc_version.clone(),
        features: graph.map(|g| g.features.clone()).unwrap_or_default(),
        profile: plan.request.profile.requested.clone(),
        target: target.triple.clone(),
        auditable: plan.auditable,
    };
    let mut annotations = derived.clone();
    for (key, value) in provenance.annotations() {
        annotations.entry(key).or_insert(value);
    }
    let packed = builder
        .layer(app)
        .run_config(image.settings.run_config(&image.bins, &derived))
        .annotations(image.settings.manifest_annotations(&annotations))
        .build()?;
    if cfg!(debug_assertions) {
        validate(&packed).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
    }
    Ok((packed, documents))
}
