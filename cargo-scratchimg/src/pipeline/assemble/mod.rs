//! Step 3: each image, or index of one image per platform: the base layer, the `files` layer,
//! and the app layer with the binaries and their SBOMs; config, manifest, annotations; then
//! its provenance and the attestations that go next to it ([`attestations`]).

mod attestations;

use anyhow::{Context, Result, ensure};

pub(crate) use attestations::Attestations;

use super::compile::PlatformBuild;
use super::in_order::each_in_order;
use super::{ImagePlan, Plan, PlatformImage};
use crate::cache::{Hit, LayerCache};
use crate::cargo::BuiltBinary;
use crate::image::{
    Artifact, EntryKind, Image, ImageBuilder, Index, Layer, LayerBuilder, Owner, validate,
};
use crate::report::Reporter;
use crate::rootfs;
use crate::sbom::{self, DescribedBinary, Sbom};
use crate::sink::{ImageUploads, Uploads};
use crate::target::Target;

/// An image made, with the plan it was made from.
pub(crate) struct AssembledImage {
    pub image: ImagePlan,
    pub artifact: Artifact,
    /// In the order of the image's SBOM claims: each platform's, each binary's.
    pub sboms: Vec<SbomDocument>,
    pub attestations: Attestations,
}

/// One binary's SBOM for one platform, as the app layer holds it.
pub(crate) struct SbomDocument {
    pub target: Target,
    pub bin: String,
    pub bytes: Vec<u8>,
}

/// Assembles every image from what the platforms' builds gave, several at once, uploading the
/// layers of those to push as they are compressed.
pub(crate) fn assemble(
    plan: &Plan,
    images: Vec<ImagePlan>,
    builds: &[PlatformBuild],
    uploads: &Uploads<'_>,
    report: &dyn Reporter,
) -> Result<Vec<AssembledImage>> {
    each_in_order(images, plan.jobs, report, |image, report| {
        let uploading = uploads.of_image(&image.push_to, report);
        let (artifact, sboms) = assemble_one(plan, &image, builds, uploading.as_ref(), report)?;
        let attestations = attestations::attest(plan, &image, &artifact, &sboms)?;
        Ok(AssembledImage {
            image,
            artifact,
            sboms,
            attestations,
        })
    })
}

/// One image's artifact: an image, or an index of one image per platform; and its SBOMs. Its
/// new layers go to `uploading` as they are compressed.
pub(crate) fn assemble_one(
    plan: &Plan,
    image: &ImagePlan,
    builds: &[PlatformBuild],
    uploading: Option<&ImageUploads<'_>>,
    report: &dyn Reporter,
) -> Result<(Artifact, Vec<SbomDocument>)> {
    report.status("Packing", &image.base.comment());
    let packer = Packer {
        plan,
        image,
        cache: &plan.layers,
        uploading,
        report,
    };
    let mut images = Vec::new();
    let mut sboms = Vec::new();
    // Both in the plan's order of platforms.
    ensure!(
        builds.len() == image.platforms.len()
            && builds
                .iter()
                .zip(&image.platforms)
                .all(|(b, p)| b.target == p.target),
        "the builds are not those of the plan's platforms (a bug in cargo-scratchimg)"
    );
    for (build, platform) in builds.iter().zip(&image.platforms) {
        let (packed, documents) = packer.pack(platform, build)?;
        images.push(packed);
        sboms.extend(documents);
    }
    let artifact = if images.len() == 1 {
        Artifact::Image(images.remove(0))
    } else {
        Artifact::Index(Index::new(images)?)
    };
    Ok((artifact, sboms))
}

/// What packing the layers of one image needs.
struct Packer<'a, 'u> {
    plan: &'a Plan,
    image: &'a ImagePlan,
    cache: &'a LayerCache,
    uploading: Option<&'a ImageUploads<'u>>,
    report: &'a dyn Reporter,
}

impl Packer<'_, '_> {
    /// The image of one platform: base, files and app layers, config and manifest; and the
    /// SBOM document of each binary, which the app layer holds too, in the image's order of
    /// binaries.
    fn pack(
        &self,
        platform: &PlatformImage,
        build: &PlatformBuild,
    ) -> Result<(Image, Vec<SbomDocument>)> {
        let Packer {
            plan,
            image,
            report,
            ..
        } = *self;
        let binaries: Vec<&BuiltBinary> = build
            .binaries_of(&image.package.name, &image.bins)
            .collect();
        let target = &platform.target;
        let mut builder = ImageBuilder::new(target.arch, image.created).layer(image.base.clone());
        if let Some(files) = &image.files {
            let count = files
                .entries()
                .filter(|(_, e)| matches!(e.kind, EntryKind::File(_)))
                .count();
            let comment = format!("files: {count} from `files` settings");
            let (layer, _) = self.layer(files, comment)?;
            report.status("Packing", &layer.comment());
            builder = builder.layer(layer);
        }
        let mut app_files = rootfs::app_files(
            binaries.iter().map(|b| (b.name.as_str(), b.content())),
            &image.settings.capabilities,
            image.date.seconds,
        )?;
        let mut comment = app_comment(&binaries);
        let mut documents = Vec::new();
        if let (Some(format), Some(graph)) = (plan.sbom, &platform.graph) {
            for binary in &binaries {
                let bytes = Sbom {
                    subject: DescribedBinary {
                        image: image.name.clone(),
                        path: rootfs::app_path(&binary.name),
                        sha256: binary.sha256.digest().to_string(),
                    },
                    crates: graph.clone(),
                    c_libraries: sbom::linked::linked_into(&build.c_libraries, graph),
                    base: rootfs::base_components(&image.settings.base),
                    created: image.created,
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
        // The order of the image's binaries: the order its claims beside the output were made.
        documents.sort_by_key(|d| image.bins.iter().position(|b| *b == d.bin));
        let (app, hit) = self.layer(&app_files, comment)?;
        report.status("Packing", &app.comment());
        report.verbose("Cache", &|| {
            let how = match hit {
                Some(hit) => hit.verb(),
                None => "made uncompressed (loaded, not written)",
            };
            format!("{how} layer {}", app.blob().digest())
        });
        let packed = builder
            .layer(app)
            .run_config(image.run_config.clone())
            .annotations(platform.annotations.clone())
            .build()?;
        if cfg!(debug_assertions) {
            validate(&packed).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
        }
        Ok((packed, documents))
    }

    /// A layer of the image: compressed (from the cache, or now on every core, uploaded as it
    /// is written when the image is pushed), or its plain tar when nothing needs it
    /// compressed; whether the cache had it.
    fn layer(&self, files: &LayerBuilder, comment: String) -> Result<(Layer, Option<Hit>)> {
        let Some(compression) = self.image.compression else {
            return Ok((files.uncompressed(comment)?, None));
        };
        let (cache, threads, report) = (self.cache, self.plan.threads, self.report);
        let (layer, hit) = match self.uploading {
            Some(uploading) => uploading.while_making(|follow| {
                cache.layer(files, comment, compression, threads, follow, report)
            })?,
            None => cache.layer(files, comment, compression, threads, &mut |_| {}, report)?,
        };
        Ok((layer, Some(hit)))
    }
}

/// What the app layer holds, for the image history.
fn app_comment(binaries: &[&BuiltBinary]) -> String {
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
