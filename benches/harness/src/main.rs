//! The comparison harness: the pieces `run.sh` drives to measure Watchfire side by side with
//! Prometheus and Alertmanager.
//!
//! * `serve`   — N synthetic scrape targets on loopback, modelled on a captured node_exporter page;
//! * `query`   — a fixed, realistic PromQL set against one server: latencies and results (JSON);
//! * `compare` — every difference between two `query` outputs, within a relative tolerance;
//! * `alerts`  — POST /api/v2/alerts intake rate, CPU per thousand alerts and memory;
//! * `report`  — the markdown table of figures and ratios from the `key value` results file.
//!
//! It is not part of the product: its own Cargo workspace, never a dependency of a Watchfire crate.

mod alerts;
mod generator;
mod query;
mod report;
mod rng;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "watchfire-harness", about = "Side-by-side comparison harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve synthetic node_exporter-like targets on 127.0.0.1:<base-port>..<base-port+targets>.
    Serve(generator::Args),
    /// Run the query set against one server and write latencies and results as JSON.
    Query(query::Args),
    /// Compare two `query` outputs and list every difference.
    Compare(query::CompareArgs),
    /// Post alerts to /api/v2/alerts and measure intake.
    Alerts(alerts::Args),
    /// Print the markdown table from a results file.
    Report(report::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => generator::run(a),
        Command::Query(a) => query::run(a),
        Command::Compare(a) => query::compare(a),
        Command::Alerts(a) => alerts::run(a),
        Command::Report(a) => report::run(a),
    }
}
