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
use super::strip::Strip;
use super::wrapper;
use crate::env::Terminal;
use crate::process::Group;
use crate::report::Verbosity;
use crate::sbom::BuildScript;
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
    /// What cargo strips (a kept build of an older version stripped symbols).
    #[serde(default)]
    pub strip: Strip,
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

    /// `cargo build` with cargo's messages on stdout, and its progress and diagnostics piped
    /// ([`super::stderr`]) as on `terminal`.
    pub(crate) fn command(&self, cargo: &Path, terminal: &Terminal) -> Command {
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
            .env(request.profile.strip_env(), request.profile.strip.name())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        super::stderr::as_on_a_terminal(&mut command, terminal);
        if let Some(wrapper) = &self.wrapper {
            wrapper.install(
                &mut command,
                &crate::tool_dir::ToolDir::new(&self.target_dir).rustc_links(),
            );
        }
        command
    }

    /// Whether cargo's stderr is passed on whole: with `-v`.
    pub(crate) fn whole_stderr(&self) -> bool {
        self.request.verbosity == Verbosity::Verbose
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
    /// The thread passing cargo's stderr on ([`super::stderr`]).
    pub(super) stderr: Option<std::thread::JoinHandle<()>>,
    /// The binaries as read while cargo ran.
    pub(super) preread: Option<Preread>,
}

impl Running {
    /// Starts `build`'s command made with `cargo`, its stderr passed on as it comes.
    pub(crate) fn spawn(build: &Build, cargo: &Path, terminal: &Terminal) -> Result<Running> {
        let mut command = build.command(cargo, terminal);
        let mut child = Group::spawn(&mut command).with_context(|| {
            format!(
                "could not run `{} build`",
                Path::new(command.get_program()).display()
            )
        })?;
        let pipe = child.child().stderr.take().expect("stderr is piped");
        let held = super::stderr::Held::new(true, build.whole_stderr());
        Ok(Running {
            child,
            stderr: Some(super::stderr::forward(pipe, held)),
            preread: None,
        })
    }

    /// Reads cargo's messages to their end: where cargo put each binary `build` asked for, and
    /// what the build scripts for the target told cargo.
    pub(crate) fn collect(self, build: &Build) -> Result<(Vec<BuiltBinary>, Vec<BuildScript>)> {
        let Running {
            mut child,
            stderr,
            mut preread,
        } = self;
        let stdout = child.child().stdout.take().expect("stdout is piped");
        let mut executables: HashMap<(PackageId, String), PathBuf> = HashMap::new();
        let mut scripts = Scripts::new(build);
        for message in Message::parse_stream(BufReader::new(stdout)) {
            let message = message.context("could not read cargo's build messages")?;
            match message {
                Message::CompilerArtifact(artifact) => {
                    scripts.artifact(&artifact);
                    if artifact.target.kind.contains(&TargetKind::Bin)
                        && let Some(executable) = artifact.executable
                    {
                        executables.insert(
                            (artifact.package_id, artifact.target.name.to_string()),
                            executable.into_std_path_buf(),
                        );
                    }
                }
                Message::BuildScriptExecuted(script) => scripts.executed(script),
                _ => {}
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
        Ok((built, scripts.finish()))
    }
}

/// The build scripts of a build's target, gathered from cargo's messages: what each told cargo
/// (`build-script-executed`), and its crate's directory and features (`compiler-artifact`).
struct Scripts {
    /// `<target-dir>/<triple>/`: what is under it was built for the target, not the host.
    target_root: PathBuf,
    executed: Vec<cargo_metadata::BuildScript>,
    /// Per package: its manifest's directory, and the features of its compilation for the
    /// target.
    crates: HashMap<PackageId, (PathBuf, Vec<String>)>,
}

impl Scripts {
    fn new(build: &Build) -> Scripts {
        Scripts {
            target_root: build.target_dir.join(&build.target.triple),
            executed: Vec::new(),
            crates: HashMap::new(),
        }
    }

    fn artifact(&mut self, artifact: &cargo_metadata::Artifact) {
        let for_target = artifact
            .filenames
            .iter()
            .any(|f| f.as_std_path().starts_with(&self.target_root));
        let dir = artifact
            .manifest_path
            .parent()
            .map(|d| d.as_std_path().to_path_buf())
            .unwrap_or_default();
        let entry = self
            .crates
            .entry(artifact.package_id.clone())
            .or_insert_with(|| (dir, Vec::new()));
        if for_target && !artifact.target.kind.contains(&TargetKind::CustomBuild) {
            entry.1 = artifact.features.clone();
        }
    }

    fn executed(&mut self, script: cargo_metadata::BuildScript) {
        // A build script's run for the host (a build dependency's) links nothing into the
        // binaries.
        if script.out_dir.as_std_path().starts_with(&self.target_root) {
            self.executed.push(script);
        }
    }

    fn finish(self) -> Vec<BuildScript> {
        let Scripts {
            executed, crates, ..
        } = self;
        executed
            .into_iter()
            .map(|script| {
                let (manifest_dir, features) =
                    crates.get(&script.package_id).cloned().unwrap_or_default();
                let (krate, version) = package_name_version(&script.package_id);
                BuildScript {
                    krate,
                    version,
                    manifest_dir,
                    out_dir: script.out_dir.into_std_path_buf(),
                    features,
                    static_libs: script
                        .linked_libs
                        .iter()
                        .filter_map(|lib| static_lib(lib.as_str()))
                        .collect(),
                }
            })
            .collect()
    }
}

/// `NAME` of a `rustc-link-lib` value `static=NAME` (modifiers such as `static:+whole-archive`
/// included); `None` for other kinds.
fn static_lib(value: &str) -> Option<String> {
    let (kind, name) = value.split_once('=')?;
    let kind = kind.split(':').next()?;
    // `NAME:RENAME` links NAME under another name: NAME is the file.
    (kind == "static").then(|| name.split(':').next().unwrap_or(name).to_string())
}

/// The name and version of a package id, in either of cargo's spellings:
/// `registry+https://…#libz-sys@1.1.33`, `path+file:///w/app#0.1.0` (the directory names it),
/// or the old `libz-sys 1.1.33 (registry+…)`.
fn package_name_version(id: &PackageId) -> (String, String) {
    let repr = id.repr.as_str();
    if let Some((url, fragment)) = repr.rsplit_once('#') {
        return match fragment.split_once('@') {
            Some((name, version)) => (name.to_string(), version.to_string()),
            None => {
                let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
                (name.to_string(), fragment.to_string())
            }
        };
    }
    let mut words = repr.split_whitespace();
    let name = words.next().unwrap_or(repr).to_string();
    (name, words.next().unwrap_or_default().to_string())
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

    #[test]
    fn build_script_messages_name_their_static_libraries_and_crates() {
        assert_eq!(static_lib("static=git2").as_deref(), Some("git2"));
        assert_eq!(
            static_lib("static:+whole-archive,-bundle=ring_core").as_deref(),
            Some("ring_core")
        );
        assert_eq!(static_lib("static=foo:bar").as_deref(), Some("foo"));
        assert_eq!(static_lib("dylib=z"), None);
        assert_eq!(static_lib("z"), None);
        let id = |repr: &str| PackageId { repr: repr.into() };
        let crates_io = "registry+https://github.com/rust-lang/crates.io-index#libz-sys@1.1.33";
        assert_eq!(
            package_name_version(&id(crates_io)),
            ("libz-sys".into(), "1.1.33".into())
        );
        assert_eq!(
            package_name_version(&id("path+file:///w/cc-own#0.1.0")),
            ("cc-own".into(), "0.1.0".into())
        );
        assert_eq!(
            package_name_version(&id("libz-sys 1.1.33 (registry+https://x)")),
            ("libz-sys".into(), "1.1.33".into())
        );
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
                strip: Strip::Symbols,
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
            strip: Strip::Debuginfo,
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
        let command = build.command(Path::new("cargo"), &Terminal::default());
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
