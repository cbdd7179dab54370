//! Step 4 (`--verify`): compile and assemble everything again in a fresh target directory and
//! insist on the same images and indexes, so what one machine builds, another can check.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::assemble::assemble_one;
use super::{AssembledImage, Plan, PlatformBuild};
use crate::interrupt::Temporary;
use crate::report::Reporter;
use crate::tool_dir::ToolDir;

/// Checks that `compile_again` into a fresh directory gives `first` byte for byte.
pub(crate) fn reproduce(
    plan: &Plan,
    first: &[AssembledImage],
    compile_again: impl FnOnce(&Path) -> Result<Vec<PlatformBuild>>,
    report: &dyn Reporter,
) -> Result<()> {
    let parent = plan.tool_dir.root();
    std::fs::create_dir_all(parent)
        .with_context(|| format!("could not create {}", parent.display()))?;
    // Removed when dropped, on every way out, and by an interrupt.
    let fresh = Temporary::new(|| {
        tempfile::Builder::new()
            .prefix(ToolDir::VERIFY_PREFIX)
            .tempdir_in(parent)
    })
    .with_context(|| format!("could not create a directory in {}", parent.display()))?;
    report.status(
        "Verifying",
        &format!("by building again in {}", fresh.path().display()),
    );
    let builds = compile_again(fresh.path())?;
    for image in first {
        let (second, _) = assemble_one(plan, &image.image, &builds, None, report)?;
        let (a, b) = (&image.artifact, &second);
        if a.digest() == b.digest() {
            report.status("Verified", &format!("both builds give {}", a.digest()));
            continue;
        }
        let differing: Vec<&str> = a
            .images()
            .iter()
            .zip(b.images())
            .flat_map(|(a, b)| a.layers().iter().zip(b.layers()))
            .filter(|(a, b)| a.diff_id() != b.diff_id())
            .map(|(a, _)| a.comment())
            .collect();
        bail!(
            "the image is not reproducible: two builds gave {} and {}\n\
             layers that differ: {}\n\
             help: look for build scripts or macros that embed the time, random values or absolute \
             paths; `diffoscope` on the two binaries shows where they differ",
            a.digest(),
            b.digest(),
            if differing.is_empty() {
                "none (the config or manifest differs)".to_string()
            } else {
                differing.join("; ")
            }
        )
    }
    Ok(())
}
