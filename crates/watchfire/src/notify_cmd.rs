//! `watchfire notify test --receiver NAME`: sends a made-up firing alert through every
//! integration of a receiver, reading the Alertmanager configuration the way the server does
//! (`--alertmanager.config.file`, else the embedded default; relative template globs and
//! `*_file` paths from the file's directory; `--web.external-url` for links), and reports each
//! integration.
//!
//! Output and exit codes follow `watchfire check`: results on stdout, failures on stderr;
//! 0 when every integration succeeded, 1 when one failed, 2 when the configuration cannot be
//! loaded or names no such receiver (2 is also clap's code for usage errors).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use watchfire_config::alertmanager;
use watchfire_notify::{Notifiers, NotifyOptions, example_group};

use crate::cli::{NotifyCommand, NotifyTestArgs};

const CONFIG_ERROR: u8 = 2;

/// Runs a notify subcommand and returns the process exit code.
pub fn run(cmd: &NotifyCommand) -> ExitCode {
    match cmd {
        NotifyCommand::Test(args) => test(args),
    }
}

fn test(args: &NotifyTestArgs) -> ExitCode {
    let loaded = match &args.alertmanager_config_file {
        Some(path) => alertmanager::Config::load(path).map(|c| (c, path.display().to_string())),
        None => alertmanager::Config::parse(
            crate::run::DEFAULT_ALERTMANAGER_CONFIG,
            Path::new("<embedded default alertmanager.yml>"),
        )
        .map(|c| (c, "the embedded default alertmanager.yml".to_owned())),
    };
    let (config, source) = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchfire: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    if !config.receivers.iter().any(|r| r.value.name == args.receiver) {
        let names: Vec<&str> = config.receivers.iter().map(|r| r.value.name.as_str()).collect();
        eprintln!(
            "watchfire: no receiver named {:?} in {source} (receivers: {})",
            args.receiver,
            names.join(", ")
        );
        return ExitCode::from(CONFIG_ERROR);
    }
    // As the server: relative paths are taken from the configuration file's directory.
    let options = NotifyOptions {
        config_dir: args
            .alertmanager_config_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        external_url: args.external_url.clone().unwrap_or_default(),
    };
    let notifiers = match Notifiers::new(&config, options) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("watchfire: {source}: {e}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("watchfire: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let group = example_group(&args.receiver, jiff::Timestamp::now());
    let results = runtime
        .block_on(notifiers.test_receiver(&args.receiver, &group, args.timeout.to_std()))
        .expect("the receiver exists: checked above");
    println!(
        "Sending a test notification through receiver {:?} ({source})",
        args.receiver
    );
    let mut ok = true;
    for r in &results {
        match &r.result {
            Ok(()) if r.integration == watchfire_alerting::notify::NO_INTEGRATION => {
                println!("  the receiver has no integrations: nothing was sent");
            }
            Ok(()) => println!("  {}[{}]: OK", r.integration, r.index),
            Err(e) => {
                ok = false;
                let retry = if e.retryable {
                    " (temporary: the server would retry)"
                } else {
                    ""
                };
                eprintln!("  {}[{}]: FAILED: {}{retry}", r.integration, r.index, e.message);
            }
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
