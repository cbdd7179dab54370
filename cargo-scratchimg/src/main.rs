//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cargo_scratchimg::{
    Attach, CargoOptions, ClientOptions, CredentialSources, Credentials, Engine, Env, Format,
    ImageFlags, KeySource, Load, MessageFormat, Options, RetryPolicy, SbomFormat, Secret, Shell,
    Verbosity, VerifyOptions, run_if_wrapping,
};
use clap::Parser;

use cli::{
    AttachArg, BuildArgs, Cargo, Command, FormatArg, LoadArg, MessageFormatArg, RegistryArgs,
    SbomArg, VerifyArgs,
};

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
    let format = match args.build.message_format {
        MessageFormatArg::Human => MessageFormat::Human,
        MessageFormatArg::Json => MessageFormat::Json,
    };
    let env = Env::read();
    let shell = Shell::new(verbosity, format, &env.terminal);
    let done = match args.command {
        Some(Command::Verify(verify)) => verify_remote(verify, &env, &shell),
        // The results go to stdout as each image is published.
        None => options(args.build, &env)
            .and_then(|options| cargo_scratchimg::run(&options, &env, &shell))
            .map(drop),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            shell.error(&error);
            ExitCode::FAILURE
        }
    }
}

/// `cargo scratchimg verify`: what it verified as status lines, `REF@sha256:…` on stdout.
fn verify_remote(args: VerifyArgs, env: &Env, shell: &Shell) -> Result<()> {
    let options = VerifyOptions {
        reference: args.reference,
        key: env.cwd.join(args.key),
        registry: client_options(args.registry, env)?,
    };
    let verified = cargo_scratchimg::verify_remote(&options, shell)?;
    println!("{}", verified.reference);
    Ok(())
}

fn client_options(args: RegistryArgs, env: &Env) -> Result<ClientOptions> {
    let credentials = explicit_credentials(args.registry_user, args.registry_password_stdin)?;
    Ok(ClientOptions {
        ca_files: args.registry_ca,
        insecure: args.insecure_registry,
        timeout: args.registry_timeout,
        retry: RetryPolicy::default(),
        credentials: CredentialSources::from_env(env, credentials),
    })
}

/// `--sign-key FILE`, or the key read from stdin for `--sign-key-stdin`.
fn sign_key(file: Option<std::path::PathBuf>, from_stdin: bool) -> Result<KeySource> {
    if let Some(file) = file {
        return Ok(KeySource::File(file));
    }
    if !from_stdin {
        return Ok(KeySource::None);
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut text)
        .context("could not read the signing key from stdin")?;
    if text.trim().is_empty() {
        bail!(
            "--sign-key-stdin read nothing\nhelp: pipe the PEM key in, e.g. `cargo scratchimg --sign-key-stdin ... < key.pem`"
        );
    }
    Ok(KeySource::Text(text))
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

fn options(args: BuildArgs, env: &Env) -> Result<Options> {
    let sign_key = sign_key(args.sign_key, args.sign_key_stdin)?;
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
        auditable: !args.no_auditable,
        sbom: match args.sbom {
            SbomArg::None => None,
            SbomArg::Spdx => Some(SbomFormat::Spdx),
            SbomArg::Cyclonedx => Some(SbomFormat::CycloneDx),
        },
        verify: args.verify,
        push: args.push,
        registry: client_options(args.registry, env)?,
        attach: args.attach.map(|attach| match attach {
            AttachArg::None => Attach::None,
            AttachArg::Sbom => Attach::Sbom,
            AttachArg::Provenance => Attach::Provenance,
            AttachArg::All => Attach::All,
        }),
        sign_key,
    })
}
