//! Locating the `kvd` and `kvsh` binaries of this workspace.
//!
//! A test executable lives in `target/<profile>/deps/`; the binaries that
//! `cargo build --workspace --bins` builds with the same profile are two levels up, in
//! `target/<profile>/`. Cargo only hands `CARGO_BIN_EXE_*` to tests of the package that owns the
//! binary, so this crate finds them relative to itself.

use std::path::PathBuf;

/// The path of the `kvd` binary.
pub fn kvd() -> PathBuf {
    binary("kvd")
}

/// The path of the `kvsh` binary.
pub fn kvsh() -> PathBuf {
    binary("kvsh")
}

/// The profile directory (`target/debug`) of the running test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let deps = exe.parent().expect("the test executable is in a directory");
    let profile = if deps.file_name().is_some_and(|name| name == "deps") {
        deps.parent().expect("deps/ has a parent")
    } else {
        deps
    };
    profile.to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (the e2e tests start the real \
         binaries)",
        path.display()
    );
    path
}
