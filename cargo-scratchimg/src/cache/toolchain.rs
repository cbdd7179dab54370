//! `rustc -vV` of the toolchain, kept while the rustc executable is unchanged: running it loads
//! the whole compiler (30 to 100 ms on a busy machine) to print five lines.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{Hit, Store};
use crate::image::sha256;

/// Entries kept: one per toolchain in use.
const KEEP: usize = 8;

#[derive(Clone)]
pub struct VersionCache {
    store: Store,
}

#[derive(Serialize)]
struct Key<'a> {
    rustc: &'a Path,
    len: u64,
    modified: std::time::SystemTime,
}

impl VersionCache {
    pub fn in_target_dir(target_directory: &Path) -> VersionCache {
        VersionCache {
            store: Store::in_target_dir(target_directory, "rustc", KEEP),
        }
    }

    /// What `run` prints for the rustc at `rustc`, from the cache while that file is the same
    /// (path, size, modification time).
    pub fn version(
        &self,
        rustc: &Path,
        run: impl FnOnce() -> Result<String>,
    ) -> Result<(String, Hit)> {
        let name = std::fs::metadata(rustc).ok().and_then(|meta| {
            let key = Key {
                rustc,
                len: meta.len(),
                modified: meta.modified().ok()?,
            };
            let json = serde_json::to_vec(&key).ok()?;
            Some(format!("{}.txt", sha256(&json).digest()))
        });
        if let Some(name) = &name
            && let Some(text) = self.store.read(name)
            && let Ok(text) = String::from_utf8(text)
        {
            return Ok((text, Hit::Cached));
        }
        let text = run()?;
        if let Some(name) = &name {
            let _ = self.store.write(name, text.as_bytes());
        }
        Ok((text, Hit::Miss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_while_the_executable_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let rustc = dir.path().join("rustc");
        std::fs::write(&rustc, "one").unwrap();
        let cache = VersionCache::in_target_dir(dir.path());
        let first = cache.version(&rustc, || Ok("rustc 1.0".into())).unwrap();
        assert_eq!(first, ("rustc 1.0".to_string(), Hit::Miss));
        let again = cache.version(&rustc, || panic!("not run again")).unwrap();
        assert_eq!(again, ("rustc 1.0".to_string(), Hit::Cached));
        // A new toolchain in the same place: another size, so asked again.
        std::fs::write(&rustc, "two!").unwrap();
        let updated = cache.version(&rustc, || Ok("rustc 2.0".into())).unwrap();
        assert_eq!(updated, ("rustc 2.0".to_string(), Hit::Miss));
    }
}
