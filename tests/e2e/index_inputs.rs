//! `cargo scratchimg index` on hostile sources: OCI directories and tars changed by the test
//! (a layer that is a FIFO or a link to /dev/zero, a path twice in a tar, a 7 GiB sparse entry,
//! a substituted layer, escape sequences in a config), and registries behind the test proxy
//! that flood or trickle a config, or list one image ten thousand times. Each is refused (or
//! read) within a bound of time and memory, says why, and pushes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{Bounded, example, hello_build, require_tool, run_bounded, run_ok, tool};
use serde_json::{Value, json};

/// `index --push TAG SOURCES…` bounded to 2 GiB of address space.
fn index(tag: &str, sources: &[&str], timeout: &str) -> Bounded {
    let mut command = tool(&example("hello"));
    command
        .args(["index", "--registry-timeout", timeout, "--push", tag])
        .args(sources);
    run_bounded(&command, 2048, Stdio::null())
}

/// `tag` is not in the registry: nothing was pushed.
fn assert_not_pushed(registry: &Registry, tag: &str) {
    let inspected = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{}/{tag}", registry.host))
        .output()
        .unwrap();
    assert!(!inspected.status.success(), "{tag} was pushed");
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, bytes).unwrap();
    let out = run_ok(Command::new("sha256sum").arg(&file));
    out.split(' ').next().unwrap().to_string()
}

/// An OCI directory of the tool's, to change: its blobs by path.
struct Layout(PathBuf);

impl Layout {
    fn blob_path(&self, digest: &str) -> PathBuf {
        self.0
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    fn read(&self, digest: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    /// The digest of the image manifest `index.json` names.
    fn manifest_digest(&self) -> String {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.0.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn manifest(&self) -> Value {
        self.read(&self.manifest_digest())
    }

    /// Writes `bytes` as a blob: its descriptor's digest and size.
    fn put(&self, bytes: &[u8]) -> (String, u64) {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        std::fs::write(self.blob_path(&digest), bytes).unwrap();
        (digest, bytes.len() as u64)
    }

    /// Makes `manifest` the image: written, and named by `index.json` in place of the old one.
    fn replace_manifest(&self, manifest: &Value) {
        let (digest, size) = self.put(manifest.to_string().as_bytes());
        let path = self.0.join("index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for entry in index["manifests"].as_array_mut().unwrap() {
            entry["digest"] = json!(digest);
            entry["size"] = json!(size);
        }
        std::fs::write(path, index.to_string()).unwrap();
    }

    /// Replaces the config with `change` of it.
    fn change_config(&self, change: impl FnOnce(&mut Value)) {
        let mut manifest = self.manifest();
        let mut config = self.read(manifest["config"]["digest"].as_str().unwrap());
        change(&mut config);
        let (digest, size) = self.put(config.to_string().as_bytes());
        manifest["config"]["digest"] = json!(digest);
        manifest["config"]["size"] = json!(size);
        self.replace_manifest(&manifest);
    }

    /// The path of the image's top layer blob.
    fn top_layer(&self) -> PathBuf {
        let manifest = self.manifest();
        let layers = manifest["layers"].as_array().unwrap();
        self.blob_path(layers.last().unwrap()["digest"].as_str().unwrap())
    }
}

/// A fresh copy of hello's arm64 OCI directory in `dir`.
fn arm64_layout(dir: &Path, name: &str) -> Layout {
    let path = dir.join(name);
    hello_build(
        "linux/arm64",
        &["--format", "oci-dir", "-o", path.to_str().unwrap()],
    );
    Layout(path)
}

#[test]
fn hostile_layouts_and_tars_are_refused_within_bounds() {
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let work = tempfile::tempdir().unwrap();
    let tag = |name: &str| format!("{}/scratchimg-e2e/hostile:{name}", registry.host);
    let refused = |name: &str, source: &Path, message: &str| {
        let run = index(&tag(name), &[source.to_str().unwrap()], "10s");
        run.report(name);
        run.assert_refused(message, 10, 128);
        assert_not_pushed(&registry, &format!("scratchimg-e2e/hostile:{name}"));
    };

    // A layer that is a FIFO, or a link to /dev/zero: refused without a read.
    let fifo = arm64_layout(work.path(), "fifo");
    let layer = fifo.top_layer();
    std::fs::remove_file(&layer).unwrap();
    run_ok(Command::new("mkfifo").arg(&layer));
    refused("fifo", &fifo.0, "it is a FIFO (named pipe), not a file");
    let zero = arm64_layout(work.path(), "zero");
    let layer = zero.top_layer();
    std::fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &layer).unwrap();
    refused("zero", &zero.0, "it is a character device, not a file");

    // Another layer in the program's place under a manifest that names it: a setuid script.
    let substituted = arm64_layout(work.path(), "substituted");
    let script = work.path().join("evil");
    std::fs::create_dir_all(script.join("app")).unwrap();
    std::fs::write(script.join("app/hello"), "#!/bin/sh\nid\n").unwrap();
    let evil = work.path().join("evil.tar.gz");
    run_ok(
        Command::new("tar")
            .args(["--mode=4755", "-czf"])
            .arg(&evil)
            .arg("-C")
            .arg(&script)
            .arg("app"),
    );
    let (digest, size) = substituted.put(&std::fs::read(&evil).unwrap());
    let mut manifest = substituted.manifest();
    let last = manifest["layers"].as_array().unwrap().len() - 1;
    manifest["layers"][last]["digest"] = json!(digest);
    manifest["layers"][last]["size"] = json!(size);
    substituted.replace_manifest(&manifest);
    refused(
        "substituted",
        &substituted.0,
        &format!("is not the digest of its layer {digest}"),
    );

    // The program's gzip layer said to be zstd.
    let relabelled = arm64_layout(work.path(), "relabelled");
    let mut manifest = relabelled.manifest();
    manifest["layers"][last]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+zstd");
    relabelled.replace_manifest(&manifest);
    refused(
        "relabelled",
        &relabelled.0,
        "is labelled application/vnd.oci.image.layer.v1.tar+zstd but holds gzip data",
    );

    // A tar with a 7 GiB sparse entry nothing names is read (its data skipped over); with
    // index.json twice, which one counts would be up to the reader: refused.
    let good = arm64_layout(work.path(), "good");
    let tar = work.path().join("sparse.tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&good.0)
            .args(["oci-layout", "index.json", "blobs"]),
    );
    let big = good.0.join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(7 << 30)
        .unwrap();
    run_ok(
        Command::new("tar")
            .args(["--sparse", "-rf"])
            .arg(&tar)
            .arg("-C")
            .arg(&good.0)
            .arg("big"),
    );
    let run = index(&tag("sparse"), &[tar.to_str().unwrap()], "10s");
    run.report("a tar with a 7 GiB sparse entry");
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.peak_kib < 128 * 1024, "{} KiB", run.peak_kib);
    run_ok(
        Command::new("tar")
            .arg("-rf")
            .arg(&tar)
            .arg("-C")
            .arg(&good.0)
            .arg("index.json"),
    );
    refused("twice", &tar, "holds index.json twice");
}

/// Escape sequences and a forged `help:` line in a config's platform, as a terminal shows
/// the run: refused, naming the value cleaned, from a directory and from a registry alike.
#[test]
fn platform_text_from_a_source_never_reaches_the_terminal_raw() {
    require_tool("skopeo", &["--version"]);
    require_tool("script", &["--version"]);
    let registry = Registry::start(Settings::default());
    let work = tempfile::tempdir().unwrap();
    let hostile = arm64_layout(work.path(), "hostile");
    hostile.change_config(|config| {
        config["os"] = json!("linux\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m\nhelp: run `rm -rf ~`");
    });
    let remote = format!("{}/scratchimg-e2e/hostile:escapes", registry.host);
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}", hostile.0.display()))
            .arg(format!("docker://{remote}")),
    );
    let tag = format!("{}/scratchimg-e2e/hostile:index", registry.host);
    for source in [hostile.0.to_str().unwrap(), remote.as_str()] {
        let mut command = tool(&example("hello"));
        command.args(["index", "--push", &tag, source]);
        let words: Vec<String> = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', "'\\''")))
            .collect();
        // Under a pseudo-terminal: what a person would see, colors and all.
        let mut terminal = Command::new("script");
        terminal
            .args([
                "--quiet",
                "--return",
                "--command",
                &words.join(" "),
                "/dev/null",
            ])
            .current_dir(example("hello"));
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => terminal.env(name, value),
                None => terminal.env_remove(name),
            };
        }
        let run = run_bounded(&terminal, 2048, Stdio::null());
        run.report(&format!("escapes from {source}"));
        let screen = String::from_utf8_lossy(&run.output.stdout).into_owned();
        assert_eq!(run.output.status.code(), Some(1), "{screen}");
        assert!(
            screen.contains(
                "the platform's os \"linux help: run `rm -rf ~`\" is not a platform name"
            ),
            "{screen:?}"
        );
        // Our own colors only: every escape is a style (`ESC [ … m`), and no bell.
        for escape in screen.split('\u{1b}').skip(1) {
            let style = escape
                .strip_prefix('[')
                .and_then(|rest| rest.split_once('m'))
                .is_some_and(|(codes, _)| codes.chars().all(|c| c.is_ascii_digit() || c == ';'));
            assert!(style, "an escape not of ours: {escape:?} in {screen:?}");
        }
        assert!(!screen.contains('\u{7}'), "{screen:?}");
        assert!(
            !screen
                .lines()
                .any(|l| anstyle_free(l).starts_with("help: run `rm")),
            "{screen:?}"
        );
        assert_not_pushed(&registry, "scratchimg-e2e/hostile:index");
    }
}

/// A line without its style escapes.
fn anstyle_free(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out.trim_end_matches('\r').to_string()
}

/// A registry that floods or trickles a config: read no further than the config's own size
/// and in a time sane for it, whatever the registry says; and an index listing one image ten
/// thousand times: fetched once, its duplicate listings never asked for.
#[test]
fn what_a_registry_sends_is_read_within_bounds() {
    require_tool("skopeo", &["--version"]);
    require_tool("curl", &["--version"]);
    let registry = Registry::start(Settings::default());
    let amd64 = format!("{}/scratchimg-e2e/bounds:amd64", registry.host);
    let pushed = hello_build("linux/amd64", &["--push", &amd64]);
    let digest = pushed["digest"].as_str().unwrap().to_string();
    let size = run_ok(
        Command::new("curl")
            .args([
                "-fsS",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg(format!(
                "http://{}/v2/scratchimg-e2e/bounds/manifests/{digest}",
                registry.host
            )),
    )
    .len();

    for fault in [Fault::FloodBlobGets, Fault::TrickleBlobGets] {
        let proxy = Proxy::start(&registry.host, fault);
        let source = format!("{}/scratchimg-e2e/bounds:amd64", proxy.host);
        let tag = format!("{}/scratchimg-e2e/bounds:{fault:?}", proxy.host);
        let run = index(&tag, &[&source], "2s");
        run.report(&format!("{fault:?}"));
        run.assert_refused("could not read the config of the manifest", 40, 128);
        assert_not_pushed(&registry, &format!("scratchimg-e2e/bounds:{fault:?}"));
    }

    // An index of ten thousand listings of the amd64 image, put straight into the registry.
    let entry = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": size,
        "platform": {"os": "linux", "architecture": "amd64"},
    });
    let many = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![entry; 10_000],
    });
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), many.to_string()).unwrap();
    run_ok(
        Command::new("curl")
            .args(["-fsS", "-X", "PUT", "-H"])
            .arg("Content-Type: application/vnd.oci.image.index.v1+json")
            .arg("--data-binary")
            .arg(format!("@{}", body.path().display()))
            .arg(format!(
                "http://{}/v2/scratchimg-e2e/bounds/manifests/many",
                registry.host
            )),
    );
    let proxy = Proxy::start(&registry.host, Fault::None);
    let source = format!("{}/scratchimg-e2e/bounds:many", proxy.host);
    let run = index(
        &format!("{}/scratchimg-e2e/bounds:merged", proxy.host),
        &[&source],
        "10s",
    );
    run.report("an index listing one image 10,000 times");
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.peak_kib < 128 * 1024, "{} KiB", run.peak_kib);
    assert_eq!(
        proxy.count(&["GET ", &format!("/manifests/{digest}")]),
        1,
        "{:#?}",
        proxy.requests()
    );
}
