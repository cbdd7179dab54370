//! What cargo strips from the binaries: the profile's `strip`, set through cargo's
//! `CARGO_PROFILE_<NAME>_STRIP`, so no host `strip` that may not know the target is needed.

use serde::{Deserialize, Serialize};

/// The `strip` setting and `--strip`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strip {
    /// The symbol table and debug info: the smallest binary, backtraces of `<unknown>` frames.
    #[default]
    Symbols,
    /// Debug info only: the symbol table stays, so backtraces name the functions.
    Debuginfo,
    /// Nothing: the profile's debug info stays too, so backtraces name files and lines when
    /// the profile has `debug` on.
    None,
}

impl Strip {
    pub const ALL: [Strip; 3] = [Strip::Symbols, Strip::Debuginfo, Strip::None];

    /// As cargo's `strip` spells it, and the setting.
    pub fn name(self) -> &'static str {
        match self {
            Strip::Symbols => "symbols",
            Strip::Debuginfo => "debuginfo",
            Strip::None => "none",
        }
    }
}
