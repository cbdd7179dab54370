//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use cargo_scratchimg::build::{BuildRoots, CargoOptions, cargo_program, wrapper};
use cargo_scratchimg::config::ImageFlags;
use cargo_scratchimg::pipeline::Load;
use cargo_scratchimg::registry::{
    ClientOptions, CredentialSources, Credentials, RetryPolicy, Secret,
};
use cargo_scratchimg::sbom::SbomFormat;
use cargo_scratchimg::sink::{Engine, Format};
use cargo_scratchimg::{Options, Shell, Verbosity};
use clap::Parser;

use cli::{Cargo, FormatArg, LoadArg, MessageFormat, SbomArg, ScratchimgArgs};

fn main() -> ExitCode {
    // cargo runs us as its rustc wrapper during our own builds; that is not a command line.
    if let Some(code) = wrapper::run_if_wrapping() {
        return code;
    }
    let Cargo::Scratchimg(args) = Cargo::parse();
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let mut shell = Shell::new(verbosity);
    let json = args.message_format == MessageFormat::Json;
    let result = options(args).and_then(|options| cargo_scratchimg::run(&options, &mut shell));
    match result {
        Ok(outcomes) => {
            for outcome in outcomes {
                if json {
                    let line = serde_json::to_string(&outcome).expect("the outcome serializes");
                    println!("{line}");
                } else {
                    // The path of what was written, if anything, then each pushed reference.
                    if let Some(path) = &outcome.path {
                        println!("{}", path.display());
                    }
                    for pushed in &outcome.pushed {
                        println!("{pushed}");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            shell.error(&error);
            ExitCode::FAILURE
        }
    }
}

/// `--registry-user` with the password from stdin, as `docker login --password-stdin` reads it.
fn explicit_credentials(user: Option<String>, from_stdin: bool) -> Result<Option<Credentials>> {
    let (Some(username), true) = (user, from_stdin) else {
        return Ok(None);
    };
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("could not read the registry password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!(
            "--registry-password-stdin read an empty password\nhelp: pipe it in, e.g. `echo \"$TOKEN\" | cargo scratchimg --registry-user USER --registry-password-stdin ...`"
        );
    }
    Ok(Some(Credentials {
        username,
        password: Secret::new(password),
    }))
}

fn options(args: ScratchimgArgs) -> Result<Options> {
    let credentials = explicit_credentials(args.registry_user, args.registry_password_stdin)?;
    let (cargo_home, rustup_home) = BuildRoots::homes(|var| std::env::var_os(var));
    Ok(Options {
        cargo: CargoOptions {
            manifest_path: args.manifest.manifest_path,
            package: args.package,
            workspace: args.workspace,
            bin: args.bin,
            features: args.features.features,
            all_features: args.features.all_features,
            no_default_features: args.features.no_default_features,
            profile: args.profile,
            target_dir: args.target_dir,
            locked: args.locked,
            frozen: args.frozen,
            offline: args.offline,
        },
        image: ImageFlags {
            entrypoint: args.entrypoint,
            cmd: (!args.cmd.is_empty()).then_some(args.cmd),
            env: args.env,
            workdir: args.workdir,
            user: args.user,
            ports: args.ports,
            labels: args.labels,
            annotations: args.annotations,
            files: args.files,
            tz: args.tz,
            ca_certs: args.ca_certs,
        },
        target: args.target,
        platforms: args.platforms,
        output: args.output,
        format: match args.format {
            FormatArg::Archive => Format::Archive,
            FormatArg::OciDir => Format::OciDir,
        },
        tags: args.tags,
        load: args.load.map(|load| match load {
            LoadArg::Auto => Load::Auto,
            LoadArg::Docker => Load::Engine(Engine::Docker),
            LoadArg::Podman => Load::Engine(Engine::Podman),
        }),
        cargo_program: cargo_program(std::env::var_os("CARGO")),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        auditable: !args.no_auditable,
        sbom: match args.sbom {
            SbomArg::None => None,
            SbomArg::Spdx => Some(SbomFormat::Spdx),
            SbomArg::Cyclonedx => Some(SbomFormat::CycloneDx),
        },
        verify: args.verify,
        rustc_wrapper: std::env::current_exe().ok(),
        cargo_home,
        rustup_home,
        cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
        push: args.push,
        default_repo: std::env::var("SCRATCHIMG_REPO")
            .ok()
            .filter(|r| !r.is_empty()),
        registry: ClientOptions {
            ca_files: args.registry_ca,
            insecure: args.insecure_registry,
            timeout: args.registry_timeout,
            retry: RetryPolicy::default(),
            credentials: CredentialSources::from_env(credentials),
        },
    })
}
