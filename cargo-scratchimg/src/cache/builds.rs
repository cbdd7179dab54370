//! Each kind of run's first `cargo build`, which the next such run starts early
//! ([`crate::build::early`]). A kind of run is named by the caller's key.

use std::path::Path;

use super::Store;
use crate::build::early::BuildSpec;

/// Entries kept: one per way the tool is run on this target directory.
const KEEP: usize = 16;

pub struct BuildCache {
    store: Store,
}

impl BuildCache {
    pub fn in_target_dir(target_directory: &Path) -> BuildCache {
        BuildCache {
            store: Store::in_target_dir(target_directory, "builds", KEEP),
        }
    }

    pub fn get(&self, key: &str) -> Option<BuildSpec> {
        serde_json::from_slice(&self.store.read(&format!("{key}.json"))?).ok()
    }

    pub fn put(&self, key: &str, spec: &BuildSpec) {
        if let Ok(json) = serde_json::to_vec(spec) {
            let _ = self.store.write(&format!("{key}.json"), &json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_put_is_got_back_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BuildCache::in_target_dir(dir.path());
        let spec = BuildSpec::of(&std::process::Command::new("cargo"), Vec::new());
        assert_eq!(cache.get("k"), None);
        cache.put("k", &spec);
        assert_eq!(cache.get("k"), Some(spec));
        assert_eq!(cache.get("other"), None);
    }
}
