//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;

use std::process::ExitCode;

use cargo_scratchimg::build::{CargoOptions, cargo_program};
use cargo_scratchimg::config::ImageFlags;
use cargo_scratchimg::pipeline::Load;
use cargo_scratchimg::sink::{Engine, Format};
use cargo_scratchimg::{Options, Shell, Verbosity};
use clap::Parser;

use cli::{Cargo, FormatArg, LoadArg, MessageFormat, ScratchimgArgs};

fn main() -> ExitCode {
    let Cargo::Scratchimg(args) = Cargo::parse();
    let verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let mut shell = Shell::new(verbosity);
    let json = args.message_format == MessageFormat::Json;
    match cargo_scratchimg::run(&options(args), &mut shell) {
        Ok(outcomes) => {
            for outcome in outcomes {
                if json {
                    let line = serde_json::to_string(&outcome).expect("the outcome serializes");
                    println!("{line}");
                } else {
                    println!("{}", outcome.path.display());
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

fn options(args: ScratchimgArgs) -> Options {
    Options {
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
        cwd: std::env::current_dir().unwrap_or_else(|_| ".".into()),
    }
}
