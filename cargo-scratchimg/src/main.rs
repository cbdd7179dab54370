//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;
#[cfg(test)]
mod settings_reference;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cargo_scratchimg::{
    Attach, CargoOptions, ClientOptions, CredentialSources, Credentials, Engine, Env, Format,
    ImageFlags, IndexOptions, KEY_LIMIT, KeySource, Load, MessageFormat, Options, ResolveOptions,
    RetryPolicy, RunOptions, SECRET_LIMIT, SbomFormat, Secret, Shell, SignFormat, Strip, Verbosity,
    VerifyOptions, handle_interrupts, interrupted, read_stdin, run_if_wrapping,
};
use clap::Parser;

use cli::{
    AttachArg, BuildArgs, Cargo, Command, FormatArg, IndexArgs, LoadArg, MessageFormatArg,
    RegistryArgs, ResolveArgs, RunArgs, SbomArg, SignFormatArg, StripArg, VerifyArgs,
};

fn main() -> ExitCode {
    // cargo runs us as its rustc wrapper during our own builds; that is not a command line.
    if let Some(code) = run_if_wrapping() {
        return code;
    }
    let Cargo::Scratchimg(args) = Cargo::parse();
    // SIGINT and SIGTERM end cargo and remove our temporary files before we exit.
    if let Err(error) = handle_interrupts() {
        eprintln!("warning: could not handle interrupts: {error}");
    }
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let message_format = match &args.command {
        Some(Command::Index(index)) => index.message_format,
        Some(Command::Run(run)) => run.build.message_format,
        Some(Command::Resolve(resolve)) => resolve.build.message_format,
        Some(Command::Verify(_)) => MessageFormatArg::Human,
        None => args.build.message_format,
    };
    let format = match message_format {
        MessageFormatArg::Human => MessageFormat::Human,
        MessageFormatArg::Json => MessageFormat::Json,
    };
    let env = Env::read();
    let shell = Shell::new(verbosity, format, &env.terminal);
    let done = match args.command {
        // The results go to stdout as each image is published.
        None => options(args.build, &env)
            .and_then(|options| cargo_scratchimg::run(&options, &env, &shell))
            .map(|_| ExitCode::SUCCESS),
        Some(Command::Run(run)) => run_options(run, &env)
            .and_then(|(options, run)| cargo_scratchimg::run_image(&options, &run, &env, &shell))
            // The container's exit code is ours, as `docker run` makes it.
            .map(ExitCode::from),
        Some(Command::Resolve(resolve)) => resolve_options(resolve, &env)
            .and_then(|(options, resolve)| {
                cargo_scratchimg::resolve(&options, &resolve, &env, &shell)
            })
            .and_then(|text| {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .context("could not write the resolved YAML to stdout")
            })
            .map(|()| ExitCode::SUCCESS),
        Some(Command::Index(index)) => index_options(index, &env)
            .and_then(|options| cargo_scratchimg::index(&options, &env, &shell))
            .and_then(|outcome| {
                let text = match format {
                    MessageFormat::Json => format!("{}\n", serde_json::to_string(&outcome)?),
                    MessageFormat::Human => format!("{}\n", outcome.pushed.join("\n")),
                };
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .context("could not write to stdout")
            })
            .map(|()| ExitCode::SUCCESS),
        Some(Command::Verify(verify)) => {
            verify_remote(verify, &env, &shell).map(|()| ExitCode::SUCCESS)
        }
    };
    match done {
        Ok(code) => code,
        Err(_) if interrupted().is_some() => {
            // What failed was stopped by the interrupt, which exits with its own code.
            loop {
                std::thread::park();
            }
        }
        Err(error) => {
            shell.error(&error);
            ExitCode::FAILURE
        }
    }
}

fn engine(arg: LoadArg) -> Load {
    match arg {
        LoadArg::Auto => Load::Auto,
        LoadArg::Docker => Load::Engine(Engine::Docker),
        LoadArg::Podman => Load::Engine(Engine::Podman),
        LoadArg::Containerd => Load::Engine(Engine::Containerd),
    }
}

/// `cargo scratchimg run`: the build's options, with no file written and `-e` kept for the
/// container, and how to run it.
fn run_options(args: RunArgs, env: &Env) -> Result<(Options, RunOptions)> {
    let mut options = options(args.build, env)?;
    let run = RunOptions {
        engine: engine_of(&options, args.engine),
        publish: args.publish,
        // Given to the container when it starts, so the image stays the one a build makes.
        env: std::mem::take(&mut options.image.env),
        args: args.args,
        tty: env.terminal.stdin && env.terminal.stdout,
        stop_timeout: args.stop_timeout,
    };
    Ok((options, run))
}

/// `--engine`, else the engine `--load=ENGINE` names.
fn engine_of(options: &Options, arg: LoadArg) -> Load {
    match (arg, options.load) {
        (LoadArg::Auto, Some(load)) => load,
        (arg, _) => engine(arg),
    }
}

fn resolve_options(args: ResolveArgs, env: &Env) -> Result<(Options, ResolveOptions)> {
    let files = args.filenames.clone();
    let options = options(args.build, env)?;
    Ok((options, ResolveOptions { files }))
}

fn index_options(args: IndexArgs, env: &Env) -> Result<IndexOptions> {
    Ok(IndexOptions {
        push: args.push,
        sources: args.sources,
        registry: registry_options(args.registry, env)?,
    })
}

/// `cargo scratchimg verify`: what it verified as status lines, `REF@sha256:…` on stdout.
fn verify_remote(args: VerifyArgs, env: &Env, shell: &Shell) -> Result<()> {
    let options = VerifyOptions {
        reference: args.reference,
        keys: args.key.iter().map(|key| env.cwd.join(key)).collect(),
        strict: args.strict,
        registry: registry_options(args.registry, env)?,
    };
    let verified = cargo_scratchimg::verify_remote(&options, shell)?;
    println!("{}", verified.reference);
    Ok(())
}

fn registry_options(args: RegistryArgs, env: &Env) -> Result<ClientOptions> {
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
    let bytes = zeroize::Zeroizing::new(
        read_stdin(KEY_LIMIT).context("could not read the signing key from stdin")?,
    );
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
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
    let bytes = read_stdin(SECRET_LIMIT)
        .context("could not read the registry password from --registry-password-stdin")?;
    let password = String::from_utf8(bytes)
        .context("the password from --registry-password-stdin is not UTF-8")?;
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
            selected: Vec::new(),
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
            sign_format: args.sign_format.map(|format| match format {
                SignFormatArg::Bundle => SignFormat::Bundle,
                SignFormatArg::Legacy => SignFormat::Legacy,
                SignFormatArg::Both => SignFormat::Both,
            }),
            capabilities: args.capabilities,
            strip: args.strip.map(|strip| match strip {
                StripArg::Symbols => Strip::Symbols,
                StripArg::Debuginfo => Strip::Debuginfo,
                StripArg::None => Strip::None,
            }),
        },
        target: args.target,
        platforms: args.platforms,
        output: args.output,
        metadata_file: args.metadata_file,
        format: match args.format {
            FormatArg::Archive => Format::Archive,
            FormatArg::OciDir => Format::OciDir,
        },
        tags: args.tags,
        load: args.load.map(engine),
        containerd_namespace: args.containerd_namespace,
        zig: args.zig,
        skip_output: false,
        auditable: !args.no_auditable,
        sbom: match args.sbom {
            SbomArg::None => None,
            SbomArg::Spdx => Some(SbomFormat::Spdx),
            SbomArg::Cyclonedx => Some(SbomFormat::CycloneDx),
        },
        sbom_in_image: args.sbom_in_image,
        verify: args.verify,
        push: args.push,
        registry: registry_options(args.registry, env)?,
        attach: args.attach.map(|attach| match attach {
            AttachArg::None => Attach::None,
            AttachArg::Sbom => Attach::Sbom,
            AttachArg::Provenance => Attach::Provenance,
            AttachArg::All => Attach::All,
        }),
        sign_key,
        retag: None,
    })
}
