//! The `cargo build` of a plan as a value ([`Build`]), the command it becomes, and what it gave.
//!
//! A [`Build`] is plain data: the next run keeps it to start it early ([`super::early`], which
//! checks a kept one before it starts), and the command is always made from it here, with the
//! cargo of the run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, PackageId, TargetKind};
use serde::{Deserialize, Serialize};

use super::BuiltBinary;
use super::preread::Preread;
use super::wrapper;
use crate::process::Group;
use crate::report::Verbosity;
use crate::target::Target;

/// One cargo invocation for every image of a run, before a target is chosen: the packages with
/// their binaries, and the features and profile resolved from flags and settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildRequest {
    /// The first package's Cargo.toml: cargo finds the workspace from it.
    pub manifest_path: PathBuf,
    pub packages: Vec<PackageBins>,
    /// `--features` values, already qualified `package/feature` when several packages build.
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    /// `--locked`, `--frozen`, `--offline`.
    pub lock_flags: Vec<String>,
    pub profile: Profile,
    /// `--quiet` or `--verbose` for cargo, as for us.
    pub verbosity: Verbosity,
}

/// A package to build, and which of its binaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackageBins {
    pub id: PackageId,
    pub name: String,
    pub version: String,
    pub bins: Vec<String>,
}

/// The profile we build with: the user's, inherited, under a name of our own. Its artifacts get
/// a directory of their own, so crates that a plain `cargo build` compiled without our path
/// remapping (which cargo cannot see: a rustc wrapper adds it) are never taken as up to date.
/// Binaries without their dependency list get yet another, for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// The profile asked for (flag or setting), e.g. `release`: ours inherits it.
    pub requested: String,
    /// Whether the binaries carry their dependency lists.
    pub auditable: bool,
}

impl Profile {
    /// `scratchimg-release`, or `scratchimg-plain-release` without dependency lists.
    pub(crate) fn name(&self) -> String {
        if self.auditable {
            format!("scratchimg-{}", self.requested)
        } else {
            format!("scratchimg-plain-{}", self.requested)
        }
    }

    /// `--profile NAME --config profile.NAME.inherits="…"`.
    fn args(&self) -> Vec<String> {
        let name = self.name();
        vec![
            "--profile".into(),
            name.clone(),
            "--config".into(),
            format!("profile.{name}.inherits=\"{}\"", self.requested),
        ]
    }

    /// `CARGO_PROFILE_<NAME>_STRIP`, named as cargo's config environment variables are.
    fn strip_env(&self) -> String {
        format!(
            "CARGO_PROFILE_{}_STRIP",
            self.name().to_uppercase().replace('-', "_")
        )
    }
}

impl BuildRequest {
    /// `package `a``, or `packages `a`, `b``, for messages.
    pub(crate) fn package_names(&self) -> String {
        let names: Vec<&str> = self.packages.iter().map(|p| p.name.as_str()).collect();
        match names.as_slice() {
            [one] => format!("package `{one}`"),
            many => format!("packages `{}`", many.join("`, `")),
        }
    }

    /// `--manifest-path M --package a@1 …`: the packages every cargo command of the plan names.
    pub(crate) fn package_args(&self) -> Vec<OsString> {
        self.args_for(&self.packages.iter().collect::<Vec<_>>())
    }

    /// [`BuildRequest::package_args`] for some of the packages.
    fn args_for(&self, packages: &[&PackageBins]) -> Vec<OsString> {
        let mut args = vec!["--manifest-path".into(), self.manifest_path.clone().into()];
        for package in packages {
            args.push("--package".into());
            args.push(format!("{}@{}", package.name, package.version).into());
        }
        args
    }

    /// The flags that decide what cargo resolves: features and lock flags.
    pub(crate) fn resolution_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if !self.features.is_empty() {
            flags.push(format!("--features={}", self.features.join(",")));
        }
        if self.all_features {
            flags.push("--all-features".into());
        }
        if self.no_default_features {
            flags.push("--no-default-features".into());
        }
        flags.extend(self.lock_flags.iter().cloned());
        flags
    }

    fn verbosity_flag(&self) -> Option<&'static str> {
        match self.verbosity {
            Verbosity::Quiet => Some("--quiet"),
            Verbosity::Normal => None,
            Verbosity::Verbose => Some("--verbose"),
        }
    }
}

/// The `cargo build` of a request for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Build {
    pub request: BuildRequest,
    pub target: Target,
    pub target_dir: PathBuf,
    /// The cross linker's variables, if any.
    pub env: Vec<(String, String)>,
    /// This executable as rustc's wrapper; `None` builds without remapping or lists.
    pub wrapper: Option<wrapper::Wrapper>,
    /// cargo-zigbuild, which runs this build with zig as the C compiler and linker (`--zig`).
    #[serde(default)]
    pub zigbuild: Option<PathBuf>,
}

impl Build {
    /// Where cargo puts the binaries of this build: its target directory, target and profile.
    pub(crate) fn executables(&self) -> Vec<PathBuf> {
        let dir = self
            .target_dir
            .join(&self.target.triple)
            .join(self.request.profile.name());
        let bins = self.request.packages.iter().flat_map(|p| &p.bins);
        bins.map(|bin| dir.join(bin)).collect()
    }

    /// `cargo build` with cargo's messages on stdout and its progress and diagnostics on ours.
    pub(crate) fn command(&self, cargo: &Path) -> Command {
        let request = &self.request;
        let mut command = match &self.zigbuild {
            // `cargo-zigbuild zigbuild` takes `cargo build`'s arguments and runs $CARGO.
            Some(zigbuild) => {
                let mut command = Command::new(zigbuild);
                command.arg("zigbuild").env("CARGO", cargo);
                command
            }
            None => {
                let mut command = Command::new(cargo);
                command.arg("build");
                command
            }
        };
        command
            .arg("--message-format=json-render-diagnostics")
            .args(request.package_args());
        for package in &request.packages {
            for bin in &package.bins {
                command.args(["--bin", bin]);
            }
        }
        command
            .args(["--target", &self.target.triple])
            .args(request.profile.args())
            .args(request.resolution_flags())
            .args(request.verbosity_flag())
            .arg("--target-dir")
            .arg(&self.target_dir)
            // Strip through cargo itself, so no host `strip` that may not know the target is
            // needed. The profile cargo builds with is our own, so that is the one to set.
            .env(request.profile.strip_env(), "symbols")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(wrapper) = &self.wrapper {
            wrapper.install(
                &mut command,
                &crate::tool_dir::ToolDir::new(&self.target_dir).rustc_links(),
            );
        }
        command
    }

    /// Files the build reads that cargo does not track: the dependency-list objects.
    pub(crate) fn inputs(&self) -> &[PathBuf] {
        self.wrapper.as_ref().map_or(&[], |w| &w.inputs)
    }

    /// `cargo clean -p` of `packages` for this target in our profile, so the next build
    /// compiles and links them again.
    pub(crate) fn clean(&self, cargo: &Path, packages: &[&PackageBins]) -> Result<()> {
        let request = &self.request;
        let mut command = Command::new(cargo);
        command
            .args(["clean", "--quiet"])
            .args(request.args_for(packages))
            .args(["--target", &self.target.triple])
            .args(request.profile.args())
            .args(&request.lock_flags)
            .arg("--target-dir")
            .arg(&self.target_dir);
        command.stdin(Stdio::null());
        let status = Group::spawn(&mut command)
            .and_then(|mut group| group.wait())
            .with_context(|| format!("could not run `{} clean`", cargo.display()))?;
        if !status.success() {
            bail!("`cargo clean` failed ({status})");
        }
        Ok(())
    }
}

/// A running [`Build::command`], in a process group of its own: stopped with every rustc it
/// started if dropped before its end.
pub(crate) struct Running {
    pub(super) child: Group,
    /// The thread passing an early build's stderr on (see [`super::early`]).
    pub(super) stderr: Option<std::thread::JoinHandle<()>>,
    /// The binaries as read while cargo ran.
    pub(super) preread: Option<Preread>,
}

impl Running {
    /// Starts `command`.
    pub(crate) fn spawn(mut command: Command) -> Result<Running> {
        let child = Group::spawn(&mut command).with_context(|| {
            format!(
                "could not run `{} build`",
                Path::new(command.get_program()).display()
            )
        })?;
        Ok(Running {
            child,
            stderr: None,
            preread: None,
        })
    }

    /// Reads cargo's messages to their end: where cargo put each binary `build` asked for.
    pub(crate) fn collect(self, build: &Build) -> Result<Vec<BuiltBinary>> {
        let Running {
            mut child,
            stderr,
            mut preread,
        } = self;
        let stdout = child.child().stdout.take().expect("stdout is piped");
        let mut executables: HashMap<(PackageId, String), PathBuf> = HashMap::new();
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.context("could not read cargo's build messages")?;
            if let Message::CompilerArtifact(artifact) = message
                && artifact.target.kind.contains(&TargetKind::Bin)
                && let Some(executable) = artifact.executable
            {
                executables.insert(
                    (artifact.package_id, artifact.target.name.to_string()),
                    executable.into_std_path_buf(),
                );
            }
        }
        let status = child.wait().context("could not wait for cargo")?;
        // All of cargo's output before ours.
        if let Some(stderr) = stderr {
            let _ = stderr.join();
        }
        let packages = &build.request.packages;
        if !status.success() {
            bail!(
                "`cargo build` failed for {} ({status})",
                build.request.package_names()
            );
        }
        let mut built = Vec::new();
        for package in packages {
            for bin in &package.bins {
                let Some(path) = executables.remove(&(package.id.clone(), bin.clone())) else {
                    bail!(
                        "cargo built package `{}` but reported no executable for binary `{bin}`",
                        package.name
                    );
                };
                let read = preread.as_mut().and_then(|preread| preread.take(&path));
                let read_ahead = read.is_some();
                let (bytes, sha256) = match read {
                    Some(read) => read,
                    None => std::fs::File::open(&path)
                        .and_then(|mut file| read_shared(&mut file, &AtomicBool::new(false)))
                        .with_context(|| format!("could not read {}", path.display()))?,
                };
                built.push(BuiltBinary {
                    path,
                    bytes,
                    sha256,
                    read_ahead,
                    name: bin.clone(),
                    package: package.name.clone(),
                    version: package.version.clone(),
                    target: build.target.clone(),
                });
            }
        }
        Ok(built)
    }
}

/// A file's bytes, read straight into the shared buffer every later stage reads (a binary may
/// be 100 MB, and a `Vec` turned into an `Arc` would be copied), and their SHA-256, computed on
/// another thread while the rest is read. Setting `stop` ends it between two chunks.
pub(super) fn read_shared(
    file: &mut std::fs::File,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<(std::sync::Arc<[u8]>, oci_spec::image::Digest)> {
    use sha2::Digest as _;
    use std::io::Read;
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    // One allocation of the right size, zeroed by the allocator: for a large one that is fresh
    // pages from the kernel, so nothing writes 100 MB of zeros before the read fills them (that
    // pass took as long as hashing them).
    let zeroed = std::sync::Arc::<[u8]>::new_zeroed_slice(len);
    // SAFETY: zero is a valid `u8`, and the allocation is zeroed.
    let mut bytes = unsafe { zeroed.assume_init() };
    let buffer = std::sync::Arc::get_mut(&mut bytes).expect("not shared yet");
    let digest = std::thread::scope(|scope| {
        let (chunks, read) = std::sync::mpsc::sync_channel::<&[u8]>(4);
        let hashing = scope.spawn(move || {
            let mut hasher = sha2::Sha256::new();
            for chunk in read {
                hasher.update(chunk);
            }
            crate::image::digest_of(hasher.finalize())
        });
        for chunk in buffer.chunks_mut(4 << 20) {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            file.read_exact(chunk)?;
            let chunk: &[u8] = chunk;
            chunks
                .send(chunk)
                .map_err(|_| std::io::Error::other("the hashing thread stopped"))?;
        }
        drop(chunks);
        std::io::Result::Ok(crate::util::join(hashing))
    })?;
    // It must have ended there: a file still being written is read again by the next run.
    if file.read(&mut [0])? != 0 {
        return Err(std::io::Error::other("it grew while it was read"));
    }
    Ok((bytes, digest))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Across the chunks the hashing thread takes: the bytes, and their digest.
    #[test]
    fn a_binary_is_read_and_hashed_in_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        let data: Vec<u8> = (0..(9 << 20) + 3).map(|i: u32| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let read = |path: &Path| {
            read_shared(
                &mut std::fs::File::open(path).unwrap(),
                &std::sync::atomic::AtomicBool::new(false),
            )
        };
        let (bytes, digest) = read(&path).unwrap();
        assert!(bytes[..] == data[..]);
        assert_eq!(digest, crate::image::sha256(&data));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read(&path).unwrap().1, crate::image::sha256(b""));
    }

    pub(crate) fn request() -> BuildRequest {
        BuildRequest {
            manifest_path: "/w/app/Cargo.toml".into(),
            packages: vec![PackageBins {
                id: PackageId {
                    repr: "path+file:///w/app#0.1.0".into(),
                },
                name: "app".into(),
                version: "0.1.0".into(),
                bins: vec!["app".into()],
            }],
            features: vec!["a".into(), "b".into()],
            all_features: false,
            no_default_features: true,
            lock_flags: vec!["--locked".into()],
            profile: Profile {
                requested: "release".into(),
                auditable: true,
            },
            verbosity: Verbosity::Quiet,
        }
    }

    #[test]
    fn the_profile_is_our_own_and_stripped() {
        let profile = request().profile;
        assert_eq!(profile.name(), "scratchimg-release");
        assert_eq!(
            profile.strip_env(),
            "CARGO_PROFILE_SCRATCHIMG_RELEASE_STRIP"
        );
        let plain = Profile {
            requested: "dist-small".into(),
            auditable: false,
        };
        assert_eq!(plain.name(), "scratchimg-plain-dist-small");
        assert_eq!(
            plain.strip_env(),
            "CARGO_PROFILE_SCRATCHIMG_PLAIN_DIST_SMALL_STRIP"
        );
    }

    #[test]
    fn the_command_forwards_cargos_flags() {
        let build = Build {
            request: request(),
            target: Target::parse("x86_64-unknown-linux-musl").unwrap(),
            target_dir: "/w/target".into(),
            env: Vec::new(),
            wrapper: None,
            zigbuild: None,
        };
        let command = build.command(Path::new("cargo"));
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "build",
                "--message-format=json-render-diagnostics",
                "--manifest-path",
                "/w/app/Cargo.toml",
                "--package",
                "app@0.1.0",
                "--bin",
                "app",
                "--target",
                "x86_64-unknown-linux-musl",
                "--profile",
                "scratchimg-release",
                "--config",
                "profile.scratchimg-release.inherits=\"release\"",
                "--features=a,b",
                "--no-default-features",
                "--locked",
                "--quiet",
                "--target-dir",
                "/w/target",
            ]
        );
        let json = serde_json::to_string(&build).unwrap();
        assert_eq!(serde_json::from_str::<Build>(&json).unwrap(), build);
    }
}
