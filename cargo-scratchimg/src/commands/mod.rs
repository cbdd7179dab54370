//! The subcommands beside the build itself, each a flow of its own on the pipeline's steps or
//! on the registry client: `run` (build, load, run), `resolve` (build and push every image a
//! YAML file names), `index` (one index of images built on several machines), and `verify`
//! (check what a registry holds for an image against a key).

pub(crate) mod index;
pub(crate) mod resolve;
pub(crate) mod run;
pub(crate) mod verify;
