//! `watchfire check ...`: configuration checks with promtool's output and exit codes
//! (0 success, 1 failure).

use std::path::Path;
use std::process::ExitCode;

use watchfire_config::{alertmanager, prometheus, web};

use crate::cli::CheckCommand;

/// Runs a check subcommand and returns the process exit code.
pub fn run(cmd: &CheckCommand) -> ExitCode {
    let ok = match cmd {
        CheckCommand::Config { files } => files.iter().map(|f| check_config(f)).fold(true, |a, b| a & b),
        CheckCommand::Rules { files } => files.iter().map(|f| check_rules(f)).fold(true, |a, b| a & b),
        CheckCommand::WebConfig { files } => files.iter().map(|f| check_web_config(f)).fold(true, |a, b| a & b),
        CheckCommand::AlertmanagerConfig { files } => files
            .iter()
            .map(|f| check_alertmanager_config(f))
            .fold(true, |a, b| a & b),
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

/// Checks one rule file; prints promtool's lines and returns success and the rule count.
fn check_rule_file(path: &Path) -> Result<usize, String> {
    let file = watchfire_rules::load_rule_file(path).map_err(|e| e.to_string())?;
    let dups = file.duplicate_rules();
    if !dups.is_empty() {
        // promtool's layout for checkDuplicates findings.
        println!("{} duplicate rule(s) found.", dups.len());
        for dup in &dups {
            println!("{dup}");
        }
        println!("Might cause inconsistency while recording expressions.");
    }
    Ok(file.rule_count())
}

fn check_rules(path: &Path) -> bool {
    println!("Checking {}", path.display());
    match check_rule_file(path) {
        Ok(n) => {
            println!("  SUCCESS: {n} rules found\n");
            true
        }
        Err(e) => {
            eprintln!("  FAILED:\n{}\n", indent(&e));
            false
        }
    }
}

fn check_config(path: &Path) -> bool {
    println!("Checking {}", path.display());
    let config = match prometheus::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("  FAILED: {}\n", indent(&e.to_string()).trim_start());
            return false;
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let rule_files = match config.rule_file_paths(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("  FAILED: {e}\n");
            return false;
        }
    };
    println!("  SUCCESS: {} rule files found", rule_files.len());
    println!("  SUCCESS: {} is valid prometheus config file syntax\n", path.display());
    let mut ok = true;
    for rf in rule_files {
        ok &= check_rules(&rf);
    }
    ok
}

fn check_web_config(path: &Path) -> bool {
    match web::WebConfig::load(path) {
        Ok(_) => {
            println!("{} SUCCESS", path.display());
            true
        }
        Err(e) => {
            eprintln!("{} FAILED: {e}", path.display());
            false
        }
    }
}

fn check_alertmanager_config(path: &Path) -> bool {
    println!("Checking '{}'", path.display());
    match alertmanager::Config::load(path) {
        Ok(c) => {
            println!("  SUCCESS");
            println!("Found:");
            println!(" - global config");
            println!(" - route");
            println!(" - {} inhibit rules", c.inhibit_rules.len());
            println!(" - {} receivers", c.receivers.len());
            println!(" - {} templates", c.templates.len());
            println!();
            true
        }
        Err(e) => {
            eprintln!("  FAILED: {e}\n");
            false
        }
    }
}
