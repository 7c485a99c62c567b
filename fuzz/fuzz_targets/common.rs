//! Shared helpers for the fuzz targets (included with `#[path]`, not a target itself).

use std::sync::OnceLock;

/// `LADDER_FUZZ_VERBOSE=1` prints what each entry point returned, one line per call, to stderr.
/// Used to check that the seed inputs are accepted (`-runs=0` executes just the corpus).
pub fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("LADDER_FUZZ_VERBOSE").is_some_and(|v| v != "0"))
}

/// Prints `what: Ok` or `what: Err(message)` when verbose.
pub fn report<T, E: std::fmt::Display>(what: &str, result: &Result<T, E>) {
    if verbose() {
        match result {
            Ok(_) => eprintln!("{what}: Ok"),
            Err(e) => eprintln!("{what}: Err({e})"),
        }
    }
}

/// A fresh temporary directory, removed on drop. In tmpfs (`/dev/shm`) where there is one:
/// the file-based targets create, write, read and delete files on every input, which on a
/// disk-backed `/tmp` costs more than the parsing (and `Checkpoint::save` calls `fsync`).
#[allow(dead_code)] // the string-only targets have no use for it
pub fn tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.expect("create a temporary directory")
}
