//! What an image says about itself, signed or not, as values: an in-toto [`statement`] with
//! SLSA provenance ([`slsa`]) or an SBOM as its predicate, and the OCI 1.1 artifacts that carry
//! them next to the image ([`referrer`], in each signing format: [`artifacts`]). [`audit`] judges
//! what a registry holds for an image.
//! The sinks put these where they go: beside the output, in the OCI layout, in registries.

mod artifacts;
pub(crate) mod audit;
pub(crate) mod referrer;
pub(crate) mod slsa;
pub(crate) mod statement;

use anyhow::Result;
use oci_spec::image::Digest;

pub(crate) use referrer::Referrer;

use crate::image::Artifact;
use crate::sbom::SbomFormat;
use crate::sign::Signer;

/// `--attach`: which attestations go next to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    None,
    Sbom,
    Provenance,
    All,
}

impl Attach {
    pub(crate) fn sbom(self) -> bool {
        matches!(self, Attach::Sbom | Attach::All)
    }

    pub(crate) fn provenance(self) -> bool {
        matches!(self, Attach::Provenance | Attach::All)
    }
}

/// The artifact type (and blob media type) of an SBOM document, and its in-toto predicate type.
pub(crate) fn sbom_types(format: SbomFormat) -> (&'static str, &'static str) {
    match format {
        SbomFormat::Spdx => ("application/spdx+json", "https://spdx.dev/Document"),
        SbomFormat::CycloneDx => (
            "application/vnd.cyclonedx+json",
            "https://cyclonedx.org/bom",
        ),
    }
}

/// One SBOM document of a platform image.
#[derive(Debug, Clone)]
pub(crate) struct SbomFile {
    /// The platform image's digest.
    pub image: Digest,
    /// `linux/amd64`.
    pub platform: String,
    pub bin: String,
    pub bytes: Vec<u8>,
}

/// Everything an image's attestations are made of.
pub(crate) struct Documents<'a> {
    pub artifact: &'a Artifact,
    /// The image's name, e.g. `hello:0.1.0`: the subjects' names.
    pub name: String,
    pub sbom: Option<SbomFormat>,
    pub sboms: Vec<SbomFile>,
    /// The provenance statement.
    pub provenance: Vec<u8>,
    /// The image's timestamp: every artifact's `org.opencontainers.image.created`.
    pub created: String,
}

/// The subjects of statements about `artifact`: it, then each platform image of an index.
pub(crate) fn subjects(artifact: &Artifact, name: &str) -> Vec<statement::Subject> {
    let mut subjects = vec![statement::Subject::new(
        name.to_string(),
        artifact.digest().clone(),
    )];
    if let Artifact::Index(index) = artifact {
        subjects.extend(index.images().iter().map(|image| {
            let name = format!("{name} ({})", image.arch().platform());
            statement::Subject::new(name, image.digest().clone())
        }));
    }
    subjects
}

/// The provenance statement of `artifact`.
pub(crate) fn provenance(artifact: &Artifact, name: &str, facts: &slsa::BuildFacts) -> Vec<u8> {
    statement::render(
        &subjects(artifact, name),
        slsa::PREDICATE_TYPE,
        &slsa::predicate(facts),
    )
}

/// The artifacts `attach` asks for, in the format `signer` says: see [`artifacts`].
pub(crate) fn referrers(
    documents: &Documents<'_>,
    attach: Attach,
    signer: Option<Signer<'_>>,
) -> Result<Vec<Referrer>> {
    artifacts::referrers(documents, attach, signer)
}
