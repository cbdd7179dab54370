//! Between assembling and publishing: each image's provenance statement, and the attestations
//! `--attach` puts next to it (signed with `--sign-key`), as values the sinks write.

use anyhow::Result;
use serde_json::json;

use super::Plan;
use super::assemble::SbomDocument;
use super::plan::ImagePlan;
use crate::attest::{self, Documents, Referrer, SbomFile, slsa::BuildFacts};
use crate::image::Artifact;
use crate::sign::{Signer, dsse};

/// An image's attestations.
pub(crate) struct Attestations {
    /// What goes beside the output as `<output>.intoto.json`: the provenance statement, or its
    /// DSSE envelope when signed.
    pub provenance_file: Vec<u8>,
    /// Next to the image in registries (and in the OCI layout when `--attach` says so).
    pub referrers: Vec<Referrer>,
}

/// The build facts the provenance states: the parameters that made the image, and what the
/// build resolved. Nothing of the machine: no paths, no clock.
fn facts(plan: &Plan, image: &ImagePlan) -> BuildFacts {
    let graph = plan
        .platforms
        .first()
        .and_then(|p| p.graphs.get(image.package.name.as_str()));
    let settings = &image.settings;
    let run = settings.run_config(&image.bins, &Default::default());
    let base = plan.base_layer(&settings.base, settings.compression.algorithm);
    BuildFacts {
        package: image.package.name.to_string(),
        version: image.package.version.to_string(),
        binaries: image.bins.clone(),
        features: graph.map(|g| g.features.clone()).unwrap_or_default(),
        profile: plan.request.profile.requested.clone(),
        targets: plan
            .platforms
            .iter()
            .map(|p| p.target.triple.clone())
            .collect(),
        platforms: plan
            .platforms
            .iter()
            .map(|p| p.target.arch.platform())
            .collect(),
        auditable: plan.auditable,
        sbom: plan.sbom.map(|f| {
            match f {
                crate::sbom::SbomFormat::Spdx => "spdx",
                crate::sbom::SbomFormat::CycloneDx => "cyclonedx",
            }
            .to_string()
        }),
        settings: json!({
            "entrypoint": run.entrypoint,
            "cmd": run.cmd,
            "env": run.env,
            "user": run.user,
            "workdir": run.working_dir,
            "ports": run.exposed_ports,
            "volumes": run.volumes,
            "labels": settings.labels,
            "annotations": settings.annotations,
            "stopSignal": run.stop_signal,
            "files": settings
                .files
                .iter()
                .map(|f| json!({ "dst": f.dst, "mode": f.mode.map(|m| format!("{m:04o}")) }))
                .collect::<Vec<_>>(),
            "base": base.comment(),
        }),
        source: crate::provenance::source(
            image.package.repository.as_deref(),
            image.git.origin.as_deref(),
        ),
        revision: image.git.revision.clone(),
        lockfile_sha256: crate::cache::file_digest(&plan.workspace.root().join("Cargo.lock")),
        rustc: plan.rustc_version.clone(),
        base: vec![(base.blob().digest().to_string(), base.comment().to_string())],
    }
}

/// `image`'s provenance and the artifacts that go next to it.
pub(crate) fn attest(
    plan: &Plan,
    image: &ImagePlan,
    artifact: &Artifact,
    sboms: &[SbomDocument],
) -> Result<Attestations> {
    let name = image.tags[0].familiar();
    let provenance = attest::provenance(artifact, &name, &facts(plan, image));
    let provenance_file = match &plan.sign_key {
        Some(key) => dsse::seal(dsse::IN_TOTO, &provenance, key),
        None => provenance.clone(),
    };
    let files = sboms
        .iter()
        .filter_map(|document| {
            let image = artifact
                .images()
                .iter()
                .find(|i| i.arch() == document.target.arch)?;
            Some(SbomFile {
                image: image.digest().clone(),
                platform: image.arch().platform(),
                bin: document.bin.clone(),
                bytes: document.bytes.clone(),
            })
        })
        .collect();
    let documents = Documents {
        artifact,
        name,
        sbom: plan.sbom,
        sboms: files,
        provenance,
        created: image.date.timestamp()?.to_string(),
    };
    let signer = plan.sign_key.as_ref().map(|key| Signer {
        key,
        format: image.settings.sign_format,
    });
    let referrers = attest::referrers(&documents, plan.attach, signer)?;
    Ok(Attestations {
        provenance_file,
        referrers,
    })
}
