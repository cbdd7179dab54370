# Shared by scripts/test and scripts/try: status lines, and finding (or installing) the toolchain
# that has the musl targets. Sourced, not run.

# `step VERB TEXT`: one cargo-style status line on stderr.
# Colored, as cargo's, only on a terminal.
if [[ -t 2 ]]; then green=$'\033[1;32m' red=$'\033[1;31m' plain=$'\033[0m'; else green= red= plain=; fi
step() { printf '%s%12s%s %s\n' "$green" "$1" "$plain" "$2" >&2; }
fail() { printf '%serror%s: %s\n' "$red" "$plain" "$1" >&2; [[ -z ${2:-} ]] || printf 'help: %s\n' "$2" >&2; exit 1; }

# The shared set-up scripts of our CI machines, when this clone has them beside it.
shared_env=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/env

musl_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

# `has_musl_targets TOOLCHAIN`: that toolchain's sysroot holds the standard library of each target.
has_musl_targets() {
    local sysroot target
    sysroot=$(rustc "+$1" --print sysroot 2>/dev/null) || return 1
    for target in "${musl_targets[@]}"; do
        compgen -G "$sysroot/lib/rustlib/$target/lib/libstd-*.rlib" >/dev/null || return 1
    done
}

# `installed_musl_toolchain [--compilers]`: prints the first of `musl-offline` (the offline build
# of shared/env/install-musl-targets.sh) and the default toolchain whose std has both musl
# targets (with --compilers, only where the C compilers for them are on PATH too); installs
# nothing, and fails when neither has them.
installed_musl_toolchain() {
    local toolchain
    for toolchain in musl-offline "$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1)"; do
        has_musl_targets "$toolchain" && { [[ ${1:-} != --compilers ]] || has_musl_compilers; } &&
            { echo "$toolchain"; return; }
    done
    return 1
}

# `musl_toolchain [--check]`: prints the rustup toolchain whose std has both musl targets, with
# the C compilers for them (`musl-gcc`, `aarch64-linux-musl-gcc`: crates such as ring compile C).
# Preferred: `musl-offline`, which brings both compilers; else the default toolchain (after
# `rustup target add` where rustup can download); else that offline build is made. With --check
# nothing is installed.
musl_toolchain() {
    command -v rustup >/dev/null || fail "rustup is not installed" "install Rust with rustup (rustup.rs)"
    installed_musl_toolchain --compilers && return
    [[ ${1:-} != --check ]] || return 1
    local default
    default=$(rustup show active-toolchain 2>/dev/null | cut -d' ' -f1)
    if [[ -f $shared_env/install-musl-targets.sh ]]; then
        step Installing "musl targets and C compilers, as toolchain musl-offline ($shared_env/install-musl-targets.sh)"
        bash "$shared_env/install-musl-targets.sh" x86_64 aarch64 >&2 ||
            fail "$shared_env/install-musl-targets.sh failed" "run it by hand to see why"
        has_musl_targets musl-offline && has_musl_compilers && { echo musl-offline; return; }
    fi
    step Installing "musl targets with rustup (${musl_targets[*]})"
    timeout 300 rustup target add "${musl_targets[@]}" >&2 && has_musl_targets "$default" ||
        fail "rustup could not download the musl targets" \
            "run \`rustup target add ${musl_targets[*]}\` where rustup can download"
    has_musl_compilers ||
        fail "no C compilers for musl: need musl-gcc and aarch64-linux-musl-gcc on PATH" \
            "install musl-tools (Debian) and an aarch64 musl cross compiler named aarch64-linux-musl-gcc"
    echo "$default"
}

has_musl_compilers() { command -v musl-gcc >/dev/null && command -v aarch64-linux-musl-gcc >/dev/null; }
