//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cargo_scratchimg::{
    CargoOptions, ClientOptions, CredentialSources, Credentials, Engine, Env, Format, ImageFlags,
    Load, MessageFormat, Options, RetryPolicy, SbomFormat, Secret, Shell, Verbosity,
    run_if_wrapping,
};
use clap::Parser;

use cli::{Cargo, FormatArg, LoadArg, MessageFormatArg, SbomArg, ScratchimgArgs};

fn main() -> ExitCode {
    // cargo runs us as its rustc wrapper during our own builds; that is not a command line.
    if let Some(code) = run_if_wrapping() {
        return code;
    }
    let Cargo::Scratchimg(args) = Cargo::parse();
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let format = match args.message_format {
        MessageFormatArg::Human => MessageFormat::Human,
        MessageFormatArg::Json => MessageFormat::Json,
    };
    let shell = Shell::new(verbosity, format);
    let env = Env::read();
    // The results go to stdout as each image is published.
    match options(args, &env).and_then(|options| cargo_scratchimg::run(&options, &env, &shell)) {
        Ok(_) => ExitCode::SUCCESS,
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

fn options(args: ScratchimgArgs, env: &Env) -> Result<Options> {
    let credentials = explicit_credentials(args.registry_user, args.registry_password_stdin)?;
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
            compression: args.compression,
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
        auditable: !args.no_auditable,
        sbom: match args.sbom {
            SbomArg::None => None,
            SbomArg::Spdx => Some(SbomFormat::Spdx),
            SbomArg::Cyclonedx => Some(SbomFormat::CycloneDx),
        },
        verify: args.verify,
        push: args.push,
        registry: ClientOptions {
            ca_files: args.registry_ca,
            insecure: args.insecure_registry,
            timeout: args.registry_timeout,
            retry: RetryPolicy::default(),
            credentials: CredentialSources::from_env(env, credentials),
        },
    })
}
