//! `watchfire routes test`: which receivers an alert with given labels is routed to, printed
//! as amtool's `config routes test` prints it, so the two can be compared on one config.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use watchfire_alerting::dispatch::Route;
use watchfire_config::alertmanager::{self as am, matchers::parse_matcher};
use watchfire_model::{Labels, MatchType};

/// Runs the command; exit status 0 when routed (and verified, if asked), 1 when
/// `--verify.receivers` differs, 2 on a bad config or bad labels.
pub fn run(config_file: Option<&Path>, verify: Option<&str>, tree: bool, labels: &[String]) -> ExitCode {
    let config = match config_file {
        Some(path) => am::Config::load(path),
        None => am::Config::parse(crate::run::DEFAULT_ALERTMANAGER_CONFIG, Path::new("<embedded default>")),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchfire: {e}");
            return ExitCode::from(2);
        }
    };
    let mut set = BTreeMap::new();
    for l in labels {
        match parse_matcher(l) {
            Ok(m) if m.kind == MatchType::Equal => {
                set.insert(m.name, m.value);
            }
            Ok(_) => {
                eprintln!("watchfire: labels must be given as key=value pairs: {l}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("watchfire: failed to parse labels: {l}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let labels = Labels::from_pairs(set);
    let root = Route::tree(&config.route.value);
    let matched = root.matches(&labels);
    if tree {
        println!("Matching routes:");
        print_tree(&root, &labels, 0);
        println!();
    }
    let receivers: Vec<&str> = matched.iter().map(|r| r.receiver.as_str()).collect();
    let slug = receivers.join(",");
    println!("{slug}");
    match verify {
        Some(expected) if expected != slug => {
            println!("WARNING: Expected receivers did not match resolved receivers.");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// The routes on the alert's way, each with its receiver and matchers, indented by depth.
fn print_tree(route: &std::sync::Arc<Route>, labels: &Labels, depth: usize) {
    if route.matches(labels).is_empty() {
        return;
    }
    let matchers = watchfire_config::alertmanager::matchers::format_matchers(&route.matchers);
    println!("{}└── {} receiver: {}", "    ".repeat(depth), matchers, route.receiver);
    for child in &route.routes {
        print_tree(child, labels, depth + 1);
    }
}
