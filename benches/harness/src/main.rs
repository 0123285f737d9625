//! The comparison harness: the pieces `run.sh` drives to measure Watchfire side by side with
//! Prometheus and Alertmanager.
//!
//! * `serve`   — N synthetic scrape targets on loopback, modelled on a captured node_exporter page;
//! * `query`   — a fixed, realistic PromQL set against one server: latencies and results (JSON);
//! * `compare` — every difference between two `query` outputs, within a relative tolerance;
//! * `alerts`  — POST /api/v2/alerts intake rate, CPU per thousand alerts and memory;
//! * `notify-latency` — time from an alert push to its webhook notification, minus group_wait;
//! * `rw-gen`, `rw-send`, `rw-verify` — remote-write 1.0 ingest: the requests, the senders, and
//!   the check through the query API that every sample arrived;
//! * `report`  — the markdown table of figures and ratios from the `key value` results file.
//!
//! It is not part of the product: its own Cargo workspace, never a dependency of a Watchfire crate.

mod alerts;
mod generator;
mod notify_latency;
mod query;
mod remote_write;
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
    /// Push alerts and time their webhook notifications (minus group_wait).
    NotifyLatency(notify_latency::Args),
    /// Write remote-write 1.0 requests (snappy WriteRequests) for `rw-send` to a file.
    RwGen(remote_write::GenArgs),
    /// Send one part of an `rw-gen` file to /api/v1/write with concurrent senders.
    RwSend(remote_write::SendArgs),
    /// Generate remote-write data as `rw-gen` does and send it as it is made (no file).
    RwFill(remote_write::FillArgs),
    /// Count the samples of an `rw-gen` file a server holds, through its query API.
    RwVerify(remote_write::VerifyArgs),
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
        Command::NotifyLatency(a) => notify_latency::run(a),
        Command::RwGen(a) => remote_write::gen_run(a),
        Command::RwSend(a) => remote_write::send_run(a),
        Command::RwFill(a) => remote_write::fill_run(a),
        Command::RwVerify(a) => remote_write::verify_run(a),
        Command::Report(a) => report::run(a),
    }
}
