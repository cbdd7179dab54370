//! containerd as the tests reach it: Docker's own containerd, through `ctr`, in a namespace of
//! the test's own that is emptied when the test ends.

use std::process::Command;

/// containerd's socket here: Docker's own containerd.
pub const DOCKERS_CONTAINERD: &str = "/var/run/docker/containerd/containerd.sock";

/// `ctr --address … --namespace NAMESPACE`.
pub fn ctr(namespace: &str) -> Command {
    let mut command = Command::new("ctr");
    command.args(["--address", DOCKERS_CONTAINERD, "--namespace", namespace]);
    command
}

/// Removes the namespace's images when the test ends.
pub struct Namespace(pub String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let images = ctr(&self.0).args(["images", "ls", "--quiet"]).output();
        for image in images.iter().flat_map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }) {
            let _ = ctr(&self.0).args(["images", "rm", &image]).output();
        }
        // Empty once containerd's garbage collection has run; best effort.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = Command::new("ctr")
            .args(["--address", DOCKERS_CONTAINERD, "namespaces", "rm", &self.0])
            .output();
    }
}
