//! The command line, as clap sees it. Nothing outside `main.rs` uses these types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const IMAGE: &str = "Image Options";
const SUPPLY: &str = "Supply Chain Options";
const OUTPUT: &str = "Output Options";
const PACKAGE: &str = "Package Selection";
const COMPILE: &str = "Compilation Options";
const MANIFEST: &str = "Manifest Options";
const REGISTRY: &str = "Registry Options";
const RUN: &str = "Run Options";
const RESOLVE: &str = "Resolve Options";

/// Where the book is published: `--help` names, for each group of options, the chapter that
/// says more (the book's tests check that each page and section named here exists).
const BOOK: &str = "https://cargo-scratchimg.github.io/cargo-scratchimg/";

/// The chapters named under `cargo scratchimg --help`: one per group of options.
const BUILD_CHAPTERS: &[(&str, &str)] = &[
    ("Every key and flag", "settings.html"),
    (IMAGE, "image.html"),
    (OUTPUT, "how-it-works.html#outputs"),
    (SUPPLY, "supply-chain.html"),
    (REGISTRY, "registries.html"),
    (COMPILE, "multi-platform.html"),
    ("Errors", "troubleshooting.html"),
];

/// The lines naming the book's chapters, `(what, page)`, under the book's address: whole
/// addresses would not fit in the width of the help.
fn see(chapters: &[(&str, &str)]) -> String {
    let width = chapters
        .iter()
        .map(|(what, _)| what.len())
        .max()
        .unwrap_or(0);
    let lines: Vec<String> = chapters
        .iter()
        .map(|(what, page)| format!("  {what:width$}  {page}"))
        .collect();
    format!("See the book, {BOOK}:\n{}", lines.join("\n"))
}

/// cargo runs us as `cargo-scratchimg scratchimg ARGS`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap_cargo::style::CLAP_STYLING)]
pub(crate) enum Cargo {
    Scratchimg(ScratchimgArgs),
}

/// Build a Rust program for musl and write it into a `FROM scratch` OCI image.
///
/// The image holds the stripped static binary at /app/<bin>, Mozilla's CA certificates, the IANA
/// time zone database, a non-root user (uid 65532) and an SBOM, and nothing else; the binary
/// carries its dependency list for scanners. No Docker daemon, Dockerfile or base image is
/// needed. The same source and toolchain give the same bytes, on any machine.
///
/// Settings can also live in Cargo.toml, under [package.metadata.scratchimg] or
/// [workspace.metadata.scratchimg]; flags win over them. The book (below) lists every key in its
/// settings reference.
///
/// stdout gets only the output path and `REF@sha256:…` of each pushed tag, for each image (or
/// one JSON object per image with --message-format json).
#[derive(Debug, Args)]
#[command(
    version,
    about,
    long_about,
    max_term_width = 100,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = see(BUILD_CHAPTERS)
)]
pub(crate) struct ScratchimgArgs {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub build: BuildArgs,

    /// Do not print cargo log messages
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Use verbose output
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    Run(RunArgs),
    Resolve(ResolveArgs),
    Index(IndexArgs),
    /// Verify the signatures and attestations a registry holds for an image
    ///
    /// Passes when, for the image and each platform image of an index, each --key has signed
    /// its digest (a Sigstore bundle, or cosign's sha256-<hex>.sig) and a SLSA provenance about
    /// it. Every other SBOM, attestation or signature among its referrers is checked too, and
    /// each one not verified with the keys is named on stderr with why (unsigned, another key,
    /// empty or mislabelled, about another image); --strict makes any of them an error.
    #[command(max_term_width = 100, after_help = see(&[("Verifying", "supply-chain.html#verifying")]))]
    Verify(VerifyArgs),
}

/// Build the image, load it into a local engine and run it, like `cargo run`.
///
/// The container is removed when it stops (--rm), gets a terminal when stdin is one, and its exit
/// code is this command's. The image is tagged <name>:scratchimg-run, so each run replaces the
/// last. Ctrl-C is passed on to the program; SIGTERM stops it as `docker stop` would, with the
/// image's stop signal, then SIGKILL after --stop-timeout; a second one kills it at once. Killed
/// itself, the tool takes the container with it.
#[derive(Debug, Args)]
#[command(max_term_width = 100, after_help = see(&[
    ("run", "developer-loop.html#cargo-scratchimg-run"),
    ("Every key and flag", "settings.html"),
]))]
pub(crate) struct RunArgs {
    /// Engine to run in: docker when its daemon answers, else podman; or containerd (ctr)
    #[arg(long, value_enum, value_name = "ENGINE", default_value_t = LoadArg::Auto, help_heading = RUN)]
    pub engine: LoadArg,

    /// Publish a port, [HOST:]CONTAINER[/PROTO]; repeatable [default: the image's ports, or the
    /// host's network where the engine has no bridge network]
    #[arg(long, value_name = "PORT", help_heading = RUN)]
    pub publish: Vec<String>,

    /// After SIGTERM, how long the program has to stop on its stop signal before it is killed,
    /// as `docker stop --time`, e.g. 30s or 0
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = RUN)]
    pub stop_timeout: Duration,

    #[command(flatten)]
    pub build: BuildArgs,

    /// Arguments for the program, after `--`
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Build the images that YAML files name as scratchimg://PACKAGE[/BIN], push them, and print
/// the files with each reference replaced by REGISTRY/REPO@sha256:….
///
/// Only the references change: comments, key order and formatting stay as they are. Each
/// package is built once, all in one cargo build, and pushed to $SCRATCHIMG_REPO (or --push
/// REPO).
#[derive(Debug, Args)]
#[command(max_term_width = 100, after_help = see(&[
    ("resolve", "developer-loop.html#cargo-scratchimg-resolve"),
    ("Every key and flag", "settings.html"),
]))]
pub(crate) struct ResolveArgs {
    /// YAML file, directory (its .yaml and .yml files, sorted, recursively), or - for stdin;
    /// repeatable
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", required = true, help_heading = RESOLVE)]
    pub filenames: Vec<PathBuf>,

    #[command(flatten)]
    pub build: BuildArgs,
}

/// Make one multi-platform index of images built on different machines, and push it.
///
/// Each SOURCE is a pushed image (REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…), or a tar or OCI
/// directory written by cargo scratchimg. Their platforms come from their configs; two sources
/// of one platform are an error. Blobs of file sources are uploaded (those already there are
/// not), then the manifests, the index, and last the tag.
#[derive(Debug, Args)]
#[command(max_term_width = 100, after_help = see(&[
    ("index", "multi-platform.html#images-built-on-several-machines"),
    ("CI recipe", "ci.html#many-machines"),
]))]
pub(crate) struct IndexArgs {
    /// Where to push the index: REGISTRY/REPO:TAG
    #[arg(long, value_name = "REF", required = true, help_heading = REGISTRY)]
    pub push: String,

    /// Images to put in the index: pushed references, or tars and OCI directories
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// How to report the result on stdout
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormatArg::Human, help_heading = OUTPUT)]
    pub message_format: MessageFormatArg,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The image: REGISTRY/REPO[:TAG] or REGISTRY/REPO@sha256:<hex>
    #[arg(value_name = "REF")]
    pub reference: String,

    /// PEM public key the signatures must verify with (ECDSA P-256 or Ed25519); repeatable,
    /// each one required
    #[arg(long, value_name = "PUB.pem", required = true)]
    pub key: Vec<PathBuf>,

    /// Fail when any SBOM, attestation or signature among the referrers is not verified with
    /// the keys, instead of naming it
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How to reach registries.
#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    /// User name for the registries pushed to (instead of docker/podman login)
    #[arg(long, value_name = "USER", requires = "registry_password_stdin", help_heading = REGISTRY)]
    pub registry_user: Option<String>,

    /// Read the password or token for --registry-user from stdin
    #[arg(long, requires = "registry_user", help_heading = REGISTRY)]
    pub registry_password_stdin: bool,

    /// Also trust the CA certificates in this PEM file for registries; repeatable
    #[arg(long, value_name = "FILE", help_heading = REGISTRY)]
    pub registry_ca: Vec<PathBuf>,

    /// Allow plain HTTP to this registry HOST[:PORT] (loopback always is); repeatable
    #[arg(long, value_name = "HOST", help_heading = REGISTRY)]
    pub insecure_registry: Vec<String>,

    /// Time limit of each registry request, body included, e.g. 30s, 2m or 90 (seconds); blob
    /// uploads get more for their size, credential helpers three times it
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_timeout,
        help_heading = REGISTRY
    )]
    pub registry_timeout: Duration,
}

/// The options of a build: `cargo scratchimg` itself, and what `run` and `resolve` build.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Image name and tag, NAME[:TAG]; repeat for several [default: <bin>:<version>]
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]", help_heading = IMAGE)]
    pub tags: Vec<String>,

    /// Load the image into a local engine: docker when its daemon answers, else podman; or
    /// containerd, through `ctr` and its socket ($CONTAINERD_ADDRESS or the standard paths)
    #[arg(
        long,
        value_name = "ENGINE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto",
        help_heading = IMAGE
    )]
    pub load: Option<LoadArg>,

    /// containerd namespace that --load=containerd imports into (k3s and kind: k8s.io)
    #[arg(long, value_name = "NAME", default_value = "default", help_heading = IMAGE)]
    pub containerd_namespace: String,

    /// Program to run, instead of /app/<bin> [setting: entrypoint]
    #[arg(long, value_name = "PATH", help_heading = IMAGE)]
    pub entrypoint: Option<String>,

    /// Argument passed to the entrypoint; repeat for several [setting: cmd]
    #[arg(long = "cmd", value_name = "ARG", allow_hyphen_values = true, help_heading = IMAGE)]
    pub cmd: Vec<String>,

    /// Environment variable, KEY=VALUE; repeat for several [setting: env]
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", help_heading = IMAGE)]
    pub env: Vec<String>,

    /// Working directory [setting: workdir; default: the user's home]
    #[arg(long, value_name = "PATH", help_heading = IMAGE)]
    pub workdir: Option<String>,

    /// User to run as: nonroot, root, nobody, or UID[:GID] [setting: user; default: nonroot]
    #[arg(long, value_name = "USER", help_heading = IMAGE)]
    pub user: Option<String>,

    /// Port the program listens on, N[/tcp|/udp]; repeat for several [setting: ports]
    #[arg(long = "port", value_name = "PORT", help_heading = IMAGE)]
    pub ports: Vec<String>,

    /// Config label, KEY=VALUE; repeat for several [setting: labels]
    #[arg(long = "label", value_name = "KEY=VALUE", help_heading = IMAGE)]
    pub labels: Vec<String>,

    /// Manifest annotation, KEY=VALUE; repeat for several [setting: annotations]
    #[arg(long = "annotation", value_name = "KEY=VALUE", help_heading = IMAGE)]
    pub annotations: Vec<String>,

    /// File or folder to copy into the image, SRC:DST; repeat for several [setting: files]
    #[arg(long = "file", value_name = "SRC:DST", help_heading = IMAGE)]
    pub files: Vec<String>,

    /// Time zones to include: all, none, or names separated by commas [setting: tz; default:
    /// all]
    #[arg(long, value_name = "ZONES", help_heading = IMAGE)]
    pub tz: Option<String>,

    /// PEM file of CA certificates to add to Mozilla's; repeat for several [setting: ca-certs]
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = IMAGE)]
    pub ca_certs: Vec<PathBuf>,

    /// File capability of every binary, as capabilities(7) names it (net_bind_service, with or
    /// without CAP_, any case); repeat for several. The setting can also give each binary its
    /// own [setting: capabilities]
    #[arg(long = "cap", value_name = "NAME", help_heading = IMAGE)]
    pub capabilities: Vec<String>,

    /// Where to write the image [default: <target-dir>/scratchimg/<bin>-<version>.tar]
    #[arg(short, long, value_name = "PATH", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,

    /// What to write: a tar that docker, podman and skopeo load, or an OCI layout directory
    #[arg(long, value_enum, default_value_t = FormatArg::Archive, help_heading = OUTPUT)]
    pub format: FormatArg,

    /// Layer compression: gzip or zstd, optionally with :LEVEL (gzip 1-9, zstd 1-19). zstd
    /// layers need Docker 23+, containerd 1.5+ or podman to read them [setting: compression;
    /// default: gzip:3]
    #[arg(long, value_name = "ALGORITHM[:LEVEL]", help_heading = OUTPUT)]
    pub compression: Option<String>,

    /// How to report the result on stdout
    #[arg(long, value_enum, value_name = "FMT", default_value_t = MessageFormatArg::Human, help_heading = OUTPUT)]
    pub message_format: MessageFormatArg,

    /// Also write the run's record to FILE, once every image is published: one JSON document
    /// with each image as --message-format json gives it, every pushed REF@sha256:…, every file
    /// written, and the SBOMs, provenance and signatures next to each image
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    pub metadata_file: Option<PathBuf>,

    /// Leave the dependency list (cargo-auditable's `.dep-v0` section) out of the binary
    #[arg(long, help_heading = SUPPLY)]
    pub no_auditable: bool,

    /// SBOM document to write beside the output and attach to a push
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SbomArg::Spdx, help_heading = SUPPLY)]
    pub sbom: SbomArg,

    /// Put the SBOM into the image too (/usr/share/doc/sbom/); scanners that read it there
    /// (Trivy) then list the binary's crates twice
    #[arg(long, help_heading = SUPPLY)]
    pub sbom_in_image: bool,

    /// Build a second time in a fresh target directory and fail if the image digests differ
    #[arg(long, help_heading = SUPPLY)]
    pub verify: bool,

    /// Attestations to put next to the image as OCI referrers: its SBOM, its SLSA provenance. By
    /// default a registry that refuses them gets the image alone, with a warning; given, such a
    /// registry fails the push, and -o outputs hold them too [default: all when pushing, else
    /// none]
    #[arg(long, value_enum, value_name = "WHAT", help_heading = SUPPLY)]
    pub attach: Option<AttachArg>,

    /// Sign each pushed manifest and the attestations with this PKCS#8 PEM private key: ECDSA
    /// P-256 or Ed25519
    #[arg(long, value_name = "FILE", help_heading = SUPPLY)]
    pub sign_key: Option<PathBuf>,

    /// How signatures go next to the image: Sigstore bundles as OCI referrers (cosign 3,
    /// Kyverno's SigstoreBundle), cosign's older .sig tag and DSSE referrers, or both [setting:
    /// sign-format; default: bundle]
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = SUPPLY)]
    pub sign_format: Option<SignFormatArg>,

    /// Read the signing key from stdin instead
    #[arg(long, conflicts_with_all = ["sign_key", "registry_password_stdin"], help_heading = SUPPLY)]
    pub sign_key_stdin: bool,

    /// Push the image to REGISTRY/REPO[:TAG] (without :TAG, under each -t tag); repeatable.
    /// Without a value, to $SCRATCHIMG_REPO/<name>. Writes no file unless -o is also given
    #[arg(
        long,
        value_name = "REF",
        num_args = 0..=1,
        default_missing_value = "",
        help_heading = REGISTRY
    )]
    pub push: Vec<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Package to build the image of
    #[arg(short, long, value_name = "SPEC", help_heading = PACKAGE)]
    pub package: Option<String>,

    /// An image of every binary package in the workspace, from one cargo build
    #[arg(long, conflicts_with_all = ["package", "bin"], help_heading = PACKAGE)]
    pub workspace: bool,

    /// Binary to put in the image, when the package has several [setting: bin, bins]
    #[arg(long, value_name = "NAME", help_heading = PACKAGE)]
    pub bin: Option<String>,

    #[command(flatten, next_help_heading = "Feature Selection")]
    pub features: clap_cargo::Features,

    /// Build with the given profile [setting: profile; default: release]
    #[arg(long, value_name = "NAME", help_heading = COMPILE)]
    pub profile: Option<String>,

    /// Platforms to build, making an image index: linux/amd64, linux/arm64, or all
    /// [setting: platforms]
    #[arg(long = "platform", value_name = "PLATFORMS", conflicts_with = "target", help_heading = COMPILE)]
    pub platforms: Option<String>,

    /// What cargo strips from the binaries: symbols (the smallest), debuginfo (keeps the symbol
    /// table, so backtraces name functions) or none [setting: strip; default: symbols]
    #[arg(long, value_enum, value_name = "WHAT", help_heading = COMPILE)]
    pub strip: Option<StripArg>,

    /// Compile C code and link with zig, through cargo-zigbuild [setting: cross = "zig"]
    #[arg(long, help_heading = COMPILE)]
    pub zig: bool,

    /// Target triple to build for [default: the musl target of this machine's architecture]
    #[arg(long, value_name = "TRIPLE", help_heading = COMPILE)]
    pub target: Option<String>,

    /// Directory for all generated artifacts
    #[arg(long, value_name = "DIRECTORY", help_heading = COMPILE)]
    pub target_dir: Option<PathBuf>,

    #[command(flatten, next_help_heading = MANIFEST)]
    pub manifest: clap_cargo::Manifest,

    /// Assert that `Cargo.lock` will remain unchanged
    #[arg(long, help_heading = MANIFEST)]
    pub locked: bool,

    /// Run without accessing the network
    #[arg(long, help_heading = MANIFEST)]
    pub offline: bool,

    /// Equivalent to specifying both --locked and --offline
    #[arg(long, help_heading = MANIFEST)]
    pub frozen: bool,
}

/// `30s`, `2m`, `1m30s`, `500ms` (jiff's friendly durations), or a number of seconds.
fn parse_timeout(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("a limit of zero would fail every request: give e.g. 30s".to_string());
    }
    Ok(duration)
}

/// `30s`, `2m`, `1m30s` or `90` (seconds).
fn parse_duration(value: &str) -> Result<Duration, String> {
    Ok(match value.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => value
            .trim()
            .parse::<jiff::SignedDuration>()
            .ok()
            .and_then(|d| Duration::try_from(d).ok())
            .ok_or_else(|| format!("`{value}` is not a duration: give e.g. 30s, 2m or 90"))?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StripArg {
    Symbols,
    Debuginfo,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LoadArg {
    Auto,
    Docker,
    Podman,
    Containerd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// One tar with an OCI layout and Docker's manifest.json
    Archive,
    /// An OCI image layout directory
    OciDir,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SbomArg {
    /// No SBOM
    None,
    /// SPDX 2.3 JSON (<output>.spdx.json)
    Spdx,
    /// CycloneDX 1.5 JSON (<output>.cdx.json)
    Cyclonedx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AttachArg {
    /// Nothing
    None,
    /// The SBOM (--sbom's format)
    Sbom,
    /// The SLSA provenance
    Provenance,
    /// Both
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SignFormatArg {
    /// Sigstore bundles v0.3 as OCI referrers, as cosign 3 writes them
    Bundle,
    /// cosign's sha256-<hex>.sig tag and DSSE envelopes as referrers (cosign 2)
    Legacy,
    /// Both
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MessageFormatArg {
    Human,
    Json,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cargo::command().debug_assert();
    }

    #[test]
    fn registry_timeouts_read_as_durations_or_seconds() {
        use super::parse_timeout;
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0").unwrap_err().contains("zero"));
        assert!(parse_timeout("-5s").is_err());
        assert!(
            parse_timeout("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        // The flag's default is the library's.
        use clap::Parser;
        let super::Cargo::Scratchimg(args) = super::Cargo::parse_from(["cargo", "scratchimg"]);
        assert_eq!(
            args.build.registry.registry_timeout,
            cargo_scratchimg::DEFAULT_REGISTRY_TIMEOUT
        );
    }

    #[test]
    fn builds_need_no_subcommand_and_verify_is_one() {
        use clap::Parser;
        let super::Cargo::Scratchimg(args) = super::Cargo::parse_from([
            "cargo",
            "scratchimg",
            "-t",
            "x:1",
            "--attach",
            "sbom",
            "-q",
        ]);
        assert!(args.command.is_none() && args.quiet);
        assert_eq!(args.build.tags, ["x:1"]);
        assert_eq!(args.build.attach, Some(super::AttachArg::Sbom));
        let super::Cargo::Scratchimg(args) = super::Cargo::parse_from([
            "cargo",
            "scratchimg",
            "verify",
            "r/a:v1",
            "--key",
            "k.pub",
            "--key",
            "k2.pub",
            "--strict",
            "-v",
        ]);
        let Some(super::Command::Verify(verify)) = args.command else {
            panic!("verify parses as the subcommand");
        };
        assert_eq!(verify.reference, "r/a:v1");
        assert_eq!(verify.key.len(), 2);
        assert!(verify.strict);
        // verify needs a key.
        assert!(super::Cargo::try_parse_from(["cargo", "scratchimg", "verify", "r"]).is_err());
        assert!(args.verbose);
        // Build options do not go with a subcommand, nor do both ways of reading stdin.
        assert!(
            super::Cargo::try_parse_from([
                "cargo",
                "scratchimg",
                "-t",
                "x",
                "verify",
                "r",
                "--key",
                "k"
            ])
            .is_err()
        );
        assert!(
            super::Cargo::try_parse_from([
                "cargo",
                "scratchimg",
                "--sign-key-stdin",
                "--registry-user",
                "u",
                "--registry-password-stdin"
            ])
            .is_err()
        );
    }
}
