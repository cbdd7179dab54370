//! Step 3: each image, or index of one image per platform: the base layer, the `files` layer,
//! and the app layer with the binaries and their SBOMs; config, manifest, annotations.

use anyhow::{Context, Result};

use super::Plan;
use super::compile::PlatformBuild;
use super::plan::ImagePlan;
use crate::cache::{Growing, Hit, LayerCache};
use crate::cargo::BuiltBinary;
use crate::config;
use crate::image::{
    Artifact, EntryKind, Image, ImageBuilder, Index, Layer, LayerBuilder, Owner, validate,
};
use crate::provenance::{self, Provenance};
use crate::report::Reporter;
use crate::rootfs;
use crate::sbom::{self, Sbom, Subject};
use crate::sink::{Early, Uploaded};
use crate::target::Target;
use crate::util::join;

/// An image made, with the plan it was made from.
pub(crate) struct AssembledImage {
    pub image: ImagePlan,
    pub artifact: Artifact,
    pub sboms: Vec<SbomDocument>,
    /// Layers already uploaded while they were compressed, for the push.
    pub uploaded: Vec<Uploaded>,
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
            let early = Early::of(&plan.registries, &image.push_to, report);
            let (artifact, sboms, uploaded) =
                assemble_one(plan, &image, builds, early.as_ref(), report)?;
            Ok(AssembledImage {
                image,
                artifact,
                sboms,
                uploaded,
            })
        })
        .collect()
}

/// One image's artifact: an image, or an index of one image per platform; its SBOMs; and the
/// layers uploaded to `early` while they were compressed.
pub(crate) fn assemble_one(
    plan: &Plan,
    image: &ImagePlan,
    builds: &[PlatformBuild],
    early: Option<&Early<'_>>,
    report: &dyn Reporter,
) -> Result<(Artifact, Vec<SbomDocument>, Vec<Uploaded>)> {
    let cache = LayerCache::open(&plan.layout);
    let base = plan.base_layer(&image.settings.base, image.settings.compression.algorithm);
    report.status("Packing", &base.comment());
    let mut images = Vec::new();
    let mut sboms = Vec::new();
    let mut uploaded = Vec::new();
    for build in builds {
        let binaries: Vec<BuiltBinary> = build
            .binaries_of(&image.package.name, &image.bins)
            .cloned()
            .collect();
        let packer = Packer {
            plan,
            image,
            cache: &cache,
            early,
            report,
        };
        let (packed, documents) = pack(&packer, build, &binaries, &mut uploaded)?;
        images.push(packed);
        sboms.extend(documents);
    }
    let artifact = match images.len() {
        1 => Artifact::Image(images.pop().expect("one image")),
        _ => Artifact::Index(Index::new(images)?),
    };
    Ok((artifact, sboms, uploaded))
}

/// What packing the layers of one image needs.
struct Packer<'a, 'e> {
    plan: &'a Plan,
    image: &'a ImagePlan,
    cache: &'a LayerCache,
    early: Option<&'a Early<'e>>,
    report: &'a dyn Reporter,
}

/// The image of one platform: base, files and app layers, config and manifest; and the SBOM
/// document of each binary, which the app layer holds too.
fn pack(
    packer: &Packer<'_, '_>,
    build: &PlatformBuild,
    binaries: &[BuiltBinary],
    uploaded: &mut Vec<Uploaded>,
) -> Result<(Image, Vec<SbomDocument>)> {
    let Packer {
        plan,
        image,
        report,
        ..
    } = *packer;
    let target = &build.target;
    let platform = plan
        .platforms
        .iter()
        .find(|p| p.target == *target)
        .expect("a build of every platform of the plan");
    let graph = platform.graphs.get(image.package.name.as_str());
    let created = image.date.timestamp()?;
    let base = plan.base_layer(&image.settings.base, image.settings.compression.algorithm);
    let base = match image.compression {
        Some(_) => base.clone(),
        None => base
            .to_uncompressed()
            .expect("a base layer made here can be read again"),
    };
    let mut builder = ImageBuilder::new(target.arch, created).layer(base);
    if let Some(files) = &image.files {
        let count = files
            .entries()
            .filter(|(_, e)| matches!(e.kind, EntryKind::File(_)))
            .count();
        let comment = format!("files: {count} from `files` settings");
        let (layer, _) = pack_layer(packer, files, comment, uploaded)?;
        report.status("Packing", &layer.comment());
        builder = builder.layer(layer);
    }
    let mut app_files = rootfs::app_files(
        binaries.iter().map(|b| (b.name.as_str(), b.content())),
        image.date.seconds,
    )?;
    let mut comment = app_comment(binaries);
    let mut documents = Vec::new();
    if let (Some(format), Some(graph)) = (plan.sbom, graph) {
        for binary in binaries {
            let bytes = Sbom {
                subject: Subject {
                    image: image.tags[0].familiar(),
                    path: rootfs::app_path(&binary.name),
                    sha256: binary.sha256.digest().to_string(),
                },
                crates: graph.clone(),
                c_libraries: sbom::linked::linked_into(&build.c_libraries, graph),
                base: rootfs::base_components(&image.settings.base),
                created,
            }
            .render(format)?;
            // Not in the image unless asked: scanners that read SBOM files in images (Trivy)
            // would list every crate twice, with the binary's own list.
            if plan.sbom_in_image {
                let file = sbom::image_path(&binary.name, format);
                app_files.file(&file, bytes.clone(), 0o644, Owner::ROOT)?;
                comment.push_str(&format!(" + /{file}"));
            }
            documents.push(SbomDocument {
                target: target.clone(),
                bin: binary.name.clone(),
                bytes,
            });
        }
    }
    let (app, hit) = pack_layer(packer, &app_files, comment, uploaded)?;
    report.status("Packing", &app.comment());
    report.verbose("Cache", &|| {
        let how = match hit {
            Some(hit) => hit.verb(),
            None => "made uncompressed (loaded, not written)",
        };
        format!("{how} layer {}", app.blob().digest())
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

/// Bytes of a layer not yet sent when it is compressed that are worth a `HEAD` to save.
const UNSENT_WORTH_ASKING: u64 = 4 << 20;

/// A layer of the image: compressed (from the cache, or now on every core, uploaded to the
/// early push's repository as it is written), or its plain tar when nothing needs it
/// compressed; whether the cache had it. An early upload that fails is only said with `-v`: the
/// push uploads the layer whole, and says what fails.
fn pack_layer(
    packer: &Packer<'_, '_>,
    files: &LayerBuilder,
    comment: String,
    uploaded: &mut Vec<Uploaded>,
) -> Result<(Layer, Option<Hit>)> {
    let Packer {
        plan,
        image,
        cache,
        early,
        report,
    } = *packer;
    let Some(compression) = image.compression else {
        return Ok((files.uncompressed(comment)?, None));
    };
    std::thread::scope(|scope| {
        let mut uploading = None;
        let mut growing = None;
        let mut follow = |entry: std::sync::Arc<Growing>| {
            if let Some(early) = early {
                growing = Some(entry.clone());
                uploading = Some(scope.spawn(move || {
                    let digest = || entry.digest();
                    early.upload(&mut entry.reader(), entry.limit(), &digest)
                }));
            }
        };
        let made = cache.layer(
            files,
            comment,
            compression,
            plan.threads,
            &mut follow,
            report,
        );
        // Much left to send (a slow link) of a layer the registry may have already (pushed from
        // another machine, say): ask, and stop sending it if so; the push finds it there.
        if let (Some(early), Some(growing), Ok((layer, _))) = (early, &growing, &made)
            && growing.unread() > UNSENT_WORTH_ASKING
            && early.has(layer.blob().digest()).unwrap_or(false)
        {
            growing.cancel();
        }
        if let Some(uploading) = uploading {
            match join(uploading) {
                Ok(done) => {
                    report.verbose("Uploaded", &|| {
                        format!(
                            "{} to {}/{} while it was compressed",
                            done.digest, done.host, done.repository
                        )
                    });
                    uploaded.push(done);
                }
                Err(e) => report.verbose("Uploading", &|| {
                    format!("while compressing failed, so after it: {e:#}")
                }),
            }
        }
        let (layer, hit) = made?;
        Ok((layer, Some(hit)))
    })
}

/// What the app layer holds, for the image history.
fn app_comment(binaries: &[BuiltBinary]) -> String {
    let Some(first) = binaries.first() else {
        return String::new();
    };
    let paths: Vec<String> = binaries.iter().map(|b| rootfs::app_path(&b.name)).collect();
    format!(
        "{} ({} {}, {})",
        paths.join(", "),
        first.package,
        first.version,
        first.target.triple
    )
}
