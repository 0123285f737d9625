//! Build information, printed by `--version` and exported as `prometheus_build_info`.

/// The Watchfire version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The revision the binary was built from, when the build environment names one.
pub fn revision() -> &'static str {
    option_env!("WATCHFIRE_REVISION").unwrap_or("unknown")
}

/// The branch the binary was built from, when the build environment names one.
pub fn branch() -> &'static str {
    option_env!("WATCHFIRE_BRANCH").unwrap_or("unknown")
}

/// The target platform as upstream prints it (`linux/amd64`).
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}/{}", std::env::consts::OS, arch)
}

/// The long version text, laid out like `prometheus --version`.
pub fn long_version() -> String {
    format!(
        "watchfire, version {VERSION} (branch: {}, revision: {})\n  build user:       {}\n  rust version:     {}\n  platform:         {}\n  tags:             {}",
        branch(),
        revision(),
        option_env!("WATCHFIRE_BUILD_USER").unwrap_or("unknown"),
        option_env!("WATCHFIRE_RUSTC_VERSION").unwrap_or(env!("CARGO_PKG_RUST_VERSION")),
        platform(),
        "unknown",
    )
}
