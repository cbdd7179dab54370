//! The process environment, read once in `main` and passed down: nothing else in the library
//! reads environment variables, the current directory or terminal facts. (The rustc wrapper,
//! which cargo starts as another process, reads its own.)

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// The variable that sets jemalloc's page size (as log2) when tikv-jemalloc-sys builds it.
pub(crate) const JEMALLOC_LG_PAGE: &str = "JEMALLOC_SYS_WITH_LG_PAGE";

/// What the tool needs to know of the environment it runs in.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// What relative paths in flags are relative to.
    pub cwd: PathBuf,
    /// The cargo to run: `$CARGO` when cargo started us (so `cargo +nightly scratchimg` builds
    /// with nightly), else `cargo` from `PATH`.
    pub cargo: PathBuf,
    /// `$CARGO_HOME`, else `~/.cargo`, as cargo finds it.
    pub cargo_home: Option<PathBuf>,
    /// `$RUSTUP_HOME`, else `~/.rustup`, as rustup finds it.
    pub rustup_home: Option<PathBuf>,
    /// `$CARGO_TARGET_DIR`.
    pub target_dir: Option<PathBuf>,
    /// `$RUSTC`: the rustc cargo runs instead of the toolchain's.
    pub rustc: Option<PathBuf>,
    /// `$RUSTC_WRAPPER`, else `$CARGO_BUILD_RUSTC_WRAPPER`: the user's wrapper (sccache, say),
    /// which ours runs in turn.
    pub rustc_wrapper: Option<OsString>,
    /// cargo's variables that change what it resolves or how it links: `RUSTFLAGS`,
    /// `CARGO_ENCODED_RUSTFLAGS`, `CARGO_BUILD_RUSTFLAGS` and every `CARGO_TARGET_<TRIPLE>_*`.
    pub cargo_vars: BTreeMap<String, String>,
    /// `$PATH`, where cross compilers are looked for.
    pub path: Option<OsString>,
    /// `$SOURCE_DATE_EPOCH`, the timestamp of reproducible builds.
    pub source_date_epoch: Option<String>,
    /// `$SCRATCHIMG_REPO`: the registry and namespace pushes go to when they do not name one.
    pub default_repo: Option<String>,
    /// `$SCRATCHIMG_JOBS`, as set: how many images are assembled and written at once (`1`: one
    /// after another); one per core, as memory allows, when unset. Checked by the plan.
    pub jobs: Option<String>,
    /// This executable, which cargo runs as its rustc wrapper.
    pub current_exe: Option<PathBuf>,
    /// `$HOME`, and where Docker and podman keep registry credentials: `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR`, `$DOCKER_CONFIG`.
    pub home: Option<PathBuf>,
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
    /// `$XDG_CACHE_HOME/cargo-scratchimg`, else `~/.cache/cargo-scratchimg`: what runs of every
    /// project of the user share.
    pub user_cache: Option<PathBuf>,
    /// `$CONTAINERD_ADDRESS`: the socket `--load=containerd` imports through.
    pub containerd_address: Option<PathBuf>,
    /// cc-rs's C compilers for targets: `CC_<triple>` (either spelling) and `TARGET_CC`.
    pub c_compilers: BTreeMap<String, String>,
    /// What `-sys` crates' build scripts read to find a system library: pkg-config's
    /// variables, `OPENSSL_DIR`, `LIBGIT2_NO_VENDOR` and the like ([`is_native_var`]).
    pub native_vars: BTreeMap<String, String>,
    /// `$JEMALLOC_SYS_WITH_LG_PAGE`: the user chose jemalloc's page size.
    pub jemalloc_lg_page: Option<String>,
    pub terminal: Terminal,
}

/// What the terminal on stderr is, for cargo's colors and progress bar in the early build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terminal {
    /// stderr is a terminal.
    pub stderr: bool,
    /// Its width in columns, when known.
    pub width: Option<u16>,
    /// `CARGO_TERM_COLOR` is set: the user's choice wins over ours.
    pub color_set: bool,
    /// `CARGO_TERM_PROGRESS_WHEN` or `CARGO_TERM_PROGRESS_WIDTH` is set.
    pub progress_set: bool,
    /// stdin and stdout are terminals: `run` gives the container one.
    pub stdin: bool,
    pub stdout: bool,
}

impl Env {
    /// This process's environment.
    pub fn read() -> Env {
        use std::io::IsTerminal;
        let mut env = Env::from_vars(
            std::env::current_dir().unwrap_or_else(|_| ".".into()),
            std::env::vars_os(),
        );
        env.current_exe = std::env::current_exe().ok();
        env.terminal.stderr = std::io::stderr().is_terminal();
        env.terminal.stdin = std::io::stdin().is_terminal();
        env.terminal.stdout = std::io::stdout().is_terminal();
        env.terminal.width = terminal_size::terminal_size_of(std::io::stderr())
            .map(|(terminal_size::Width(width), _)| width);
        env
    }

    /// The environment `vars` describe, in `cwd`; no terminal, no executable of our own.
    pub fn from_vars(cwd: PathBuf, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
        let all: BTreeMap<String, OsString> = vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .collect();
        // cargo's variables keep their empty values, which mean something to cargo
        // (`RUSTFLAGS=""` overrides `build.rustflags`); elsewhere empty is unset.
        let cargo_vars = all
            .iter()
            .filter(|(k, _)| is_cargo_var(k))
            .filter_map(|(k, v)| Some((k.clone(), v.to_str()?.to_string())))
            .collect();
        let vars: BTreeMap<String, OsString> =
            all.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let var = |name: &str| vars.get(name).cloned();
        let string = |name: &str| var(name).and_then(|v| v.into_string().ok());
        let path = |name: &str| var(name).map(PathBuf::from);
        let home = path("HOME");
        let under_home = |dir: &str| home.as_ref().map(|h| h.join(dir));
        Env {
            cwd,
            cargo: path("CARGO").unwrap_or_else(|| PathBuf::from("cargo")),
            cargo_home: path("CARGO_HOME").or_else(|| under_home(".cargo")),
            rustup_home: path("RUSTUP_HOME").or_else(|| under_home(".rustup")),
            target_dir: path("CARGO_TARGET_DIR"),
            rustc: path("RUSTC"),
            rustc_wrapper: var("RUSTC_WRAPPER").or_else(|| var("CARGO_BUILD_RUSTC_WRAPPER")),
            cargo_vars,
            path: var("PATH"),
            source_date_epoch: string("SOURCE_DATE_EPOCH"),
            default_repo: string("SCRATCHIMG_REPO"),
            jobs: string("SCRATCHIMG_JOBS"),
            current_exe: None,
            registry_auth_file: path("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: path("XDG_RUNTIME_DIR"),
            docker_config: path("DOCKER_CONFIG"),
            containerd_address: path("CONTAINERD_ADDRESS"),
            // The XDG spec ignores a relative XDG_CACHE_HOME.
            user_cache: path("XDG_CACHE_HOME")
                .filter(|dir| dir.is_absolute())
                .or_else(|| under_home(".cache"))
                .map(|dir| dir.join("cargo-scratchimg")),
            c_compilers: vars
                .iter()
                .filter(|(k, _)| k.starts_with("CC_") || *k == "TARGET_CC")
                .filter_map(|(k, v)| Some((k.clone(), v.to_str()?.to_string())))
                .collect(),
            native_vars: vars
                .iter()
                .filter(|(k, _)| is_native_var(k))
                .filter_map(|(k, v)| Some((k.clone(), v.to_str()?.to_string())))
                .collect(),
            jemalloc_lg_page: string(JEMALLOC_LG_PAGE),
            home,
            terminal: Terminal {
                color_set: vars.contains_key("CARGO_TERM_COLOR"),
                progress_set: vars.contains_key("CARGO_TERM_PROGRESS_WHEN")
                    || vars.contains_key("CARGO_TERM_PROGRESS_WIDTH"),
                ..Terminal::default()
            },
        }
    }

    /// A cargo variable of [`Env::cargo_vars`], e.g. `CARGO_TARGET_<TRIPLE>_LINKER`.
    pub fn cargo_var(&self, name: &str) -> Option<&str> {
        self.cargo_vars.get(name).map(String::as_str)
    }

    /// A program on `PATH`, by name.
    pub fn on_path(&self, program: &str) -> Option<PathBuf> {
        std::env::split_paths(self.path.as_ref()?)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    }
}

fn is_cargo_var(name: &str) -> bool {
    matches!(
        name,
        "RUSTFLAGS" | "CARGO_ENCODED_RUSTFLAGS" | "CARGO_BUILD_RUSTFLAGS"
    ) || name.starts_with("CARGO_TARGET_") && name != "CARGO_TARGET_DIR"
}

/// Whether `name` steers a `-sys` crate's lookup of a system library (the variables the build
/// scripts of `sbom::vendored::NATIVE` read, each also with a target's prefix or suffix).
fn is_native_var(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PKG_CONFIG",
        "OPENSSL_",
        "LIBGIT2_NO_VENDOR",
        "LIBSSH2_SYS_USE_PKG_CONFIG",
        "ZSTD_SYS_USE_PKG_CONFIG",
        "LZMA_API_STATIC",
        "LIBSQLITE3_SYS_USE_PKG_CONFIG",
        "SQLITE3_LIB_DIR",
        "PQ_LIB_DIR",
        "RUSTONIG_",
        "JEMALLOC_OVERRIDE",
    ];
    NAMES.iter().any(|n| name.contains(n))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_vars(
            "/work".into(),
            vars.iter().map(|(k, v)| (k.into(), v.into())),
        )
    }

    #[test]
    fn homes_follow_the_environment_then_the_home_directory() {
        let e = env(&[("HOME", "/home/me"), ("CARGO_HOME", "/ch")]);
        assert_eq!(e.cargo_home.as_deref(), Some(Path::new("/ch")));
        assert_eq!(
            e.rustup_home.as_deref(),
            Some(Path::new("/home/me/.rustup"))
        );
        assert_eq!(e.cargo, Path::new("cargo"));
        let bare = env(&[]);
        assert_eq!((bare.cargo_home, bare.rustup_home), (None, None));
    }

    #[test]
    fn the_user_cache_follows_xdg_then_the_home_directory() {
        let cache = |vars: &[(&str, &str)]| env(vars).user_cache;
        assert_eq!(
            cache(&[("HOME", "/home/me"), ("XDG_CACHE_HOME", "/xdg")]).as_deref(),
            Some(Path::new("/xdg/cargo-scratchimg"))
        );
        assert_eq!(
            cache(&[("HOME", "/home/me"), ("XDG_CACHE_HOME", "relative")]).as_deref(),
            Some(Path::new("/home/me/.cache/cargo-scratchimg"))
        );
        assert_eq!(cache(&[]), None);
    }

    #[test]
    fn cargo_variables_are_kept_and_empty_values_are_unset() {
        let e = env(&[
            ("RUSTFLAGS", ""),
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "my-ld"),
            ("CARGO_TARGET_DIR", "/t"),
            ("SCRATCHIMG_REPO", ""),
            ("EDITOR", "vi"),
        ]);
        assert_eq!(
            e.cargo_vars.keys().collect::<Vec<_>>(),
            [
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER",
                "RUSTFLAGS"
            ]
        );
        assert_eq!(e.target_dir.as_deref(), Some(Path::new("/t")));
        assert_eq!(e.default_repo, None);
    }

    #[test]
    fn what_steers_system_library_lookups_is_kept() {
        let e = env(&[
            ("PKG_CONFIG_ALLOW_CROSS", "1"),
            ("X86_64_UNKNOWN_LINUX_MUSL_OPENSSL_DIR", "/musl"),
            ("LIBGIT2_NO_VENDOR", "1"),
            ("EDITOR", "vi"),
        ]);
        assert_eq!(
            e.native_vars.keys().collect::<Vec<_>>(),
            [
                "LIBGIT2_NO_VENDOR",
                "PKG_CONFIG_ALLOW_CROSS",
                "X86_64_UNKNOWN_LINUX_MUSL_OPENSSL_DIR"
            ]
        );
    }
}
