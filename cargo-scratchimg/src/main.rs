//! `cargo scratchimg`: parse the command line, run the library, report.

mod cli;

use std::process::ExitCode;

use cargo_scratchimg::build::{BuildRoots, CargoOptions, cargo_program, wrapper};
use cargo_scratchimg::pipeline::Load;
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
    match cargo_scratchimg::run(&options(args), &mut shell) {
        Ok(outcome) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&outcome).expect("the outcome serializes")
                );
            } else {
                println!("{}", outcome.path.display());
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
    let (cargo_home, rustup_home) = BuildRoots::homes(|var| std::env::var_os(var));
    Options {
        cargo: CargoOptions {
            manifest_path: args.manifest.manifest_path,
            package: args.package,
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
        target: args.target,
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
    }
}
