//! The `watchfire` binary: command line, logging, wiring of the crates, configuration
//! reloads, signals. It is thin glue; the work happens in the library crates.

mod backtest_cmd;
mod check;
mod cli;
mod host;
mod logging;
mod notify_cmd;
mod process_metrics;
mod routes_cmd;
mod run;
mod status;
mod targets;
mod tsdb_metrics;
mod version;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if cli.version {
        println!("{}", version::long_version());
        return ExitCode::SUCCESS;
    }
    match &cli.command {
        Some(cli::Command::Check(c)) => check::run(c),
        Some(cli::Command::Rules(c)) => backtest_cmd::run(c),
        Some(cli::Command::Notify(c)) => notify_cmd::run(c),
        Some(cli::Command::PrintDefaultConfig) => {
            let me = run::SelfAddress {
                host_port: "localhost:9090".into(),
                prefix: String::new(),
            };
            println!("# ---- prometheus.yml ----");
            println!("{}", me.default_config(std::path::Path::new("default-rules.yml")));
            println!("# ---- default-rules.yml ----");
            println!("{}", run::DEFAULT_RULES);
            println!("# ---- alertmanager.yml ----");
            print!("{}", run::DEFAULT_ALERTMANAGER_CONFIG);
            ExitCode::SUCCESS
        }
        Some(cli::Command::Routes(cli::RoutesCommand::Test {
            config_file,
            verify_receivers,
            tree,
            labels,
        })) => routes_cmd::run(config_file.as_deref(), verify_receivers.as_deref(), *tree, labels),
        Some(cli::Command::Test(cli::TestCommand::Rules { run, files })) => {
            let code = watchfire_rules::unittest::run_files(files, run, &mut std::io::stdout(), &mut std::io::stderr());
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        None => {
            if let Err(e) = logging::init(&cli.server.log_level, &cli.server.log_format) {
                eprintln!("watchfire: {e}");
                return ExitCode::FAILURE;
            }
            match run::run(cli.server) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(err = format!("{e:#}"), "watchfire stopped with an error");
                    eprintln!("watchfire: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
