//! The config crate's one integration-test binary: the upstream corpus in ../shared/compat
//! and hand-written good and bad files.

mod alertmanager;
mod prometheus;
mod rules;
mod web;

use std::path::PathBuf;

/// The shared compatibility corpus, or `None` (with a message) when it is not beside the repo.
pub fn compat_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not found; corpus tests need ../shared beside the repository",
            dir.display()
        );
        None
    }
}
