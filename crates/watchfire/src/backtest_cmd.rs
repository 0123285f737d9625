//! `watchfire rules backtest`: replays alerting rules over the history a running server
//! stored and prints when each alert would have gone pending, firing and resolved, and how
//! many notifications it would have sent (see `watchfire_rules::backtest` for the model).
//!
//! The server holds the store's lock, so this talks to it over
//! `POST /api/watchfire/rules/backtest` (as promtool's query commands talk to Prometheus).
//! Rule files are checked here first, with the errors `watchfire check rules` prints, so a
//! broken file never reaches the server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use watchfire_rules::backtest::{Report, parse_duration, parse_time};

/// `watchfire rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Replay alerting rules over stored history: when each alert would have gone pending,
    /// firing and resolved, and its notifications. Without rule files, the rules the server
    /// has loaded (narrowed by --group and --rule).
    Backtest(BacktestArgs),
}

/// `watchfire rules backtest`
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Start of the range: RFC 3339, Unix seconds, `now`, or relative to now (`-6h`).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from: String,

    /// End of the range, in the same forms.
    #[arg(long, value_name = "TIME", default_value = "now", allow_hyphen_values = true)]
    pub to: String,

    /// Evaluate every group at this step (`30s`, `5m`) instead of at its own interval.
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,

    /// The Watchfire server whose stored history is replayed (user:password@ in the URL for
    /// basic authentication).
    #[arg(long, value_name = "URL", default_value = "http://localhost:9090")]
    pub url: String,

    /// Output format: a readable table, or the server's JSON report.
    #[arg(long, short = 'o', value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,

    /// Only the rule groups with this name.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// Only the alerting rule with this name (recording rules of its group still run).
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,

    /// Count a repeated notification this often while an alert keeps firing (Alertmanager's
    /// repeat_interval); 0 counts none.
    #[arg(long = "repeat-interval", value_name = "DURATION", default_value = "4h")]
    pub repeat_interval: String,

    /// Firing again within this long after resolving counts as a flap.
    #[arg(long = "flap-window", value_name = "DURATION", default_value = "1h")]
    pub flap_window: String,

    /// How long to wait for the server.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: watchfire_model::Duration,

    /// Rule files to backtest.
    #[arg(value_name = "RULE-FILES")]
    pub files: Vec<PathBuf>,
}

/// Runs a `watchfire rules` subcommand and returns the exit code: 0 when the backtest ran,
/// 1 otherwise.
pub fn run(cmd: &RulesCommand) -> ExitCode {
    let RulesCommand::Backtest(args) = cmd;
    match backtest(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Now, in whole seconds (so relative times print without milliseconds), as ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 * 1000)
}

/// `url` without the password of its user information, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|host| host.rsplit_once('@')) {
            Some((user, _)) => {
                let user = user.split(':').next().unwrap_or_default();
                format!(
                    "{scheme}://{user}:<redacted>@{}",
                    &rest[rest.find('@').map_or(0, |i| i + 1)..]
                )
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Unix seconds with milliseconds, as the API takes them.
fn unix(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn backtest(args: &BacktestArgs) -> Result<String, String> {
    // Everything is checked before the server is contacted.
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in &args.files {
        match watchfire_rules::load_rule_file(path) {
            Ok(_) => match std::fs::read_to_string(path) {
                Ok(text) => files.push(json!({"name": path.display().to_string(), "content": text})),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            },
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(format!(
            "{}\nwatchfire: invalid rule files; the backtest was not run",
            errors.join("\n")
        ));
    }
    let now = now_ms();
    let time = |flag: &str, s: &str| parse_time(s, now).map_err(|e| format!("watchfire: --{flag}: {e}"));
    let (from, to) = (time("from", &args.from)?, time("to", &args.to)?);
    if to < from {
        return Err(format!(
            "watchfire: --to ({}) is before --from ({})",
            watchfire_rules::backtest::rfc3339(to),
            watchfire_rules::backtest::rfc3339(from)
        ));
    }
    for (flag, v) in [
        ("step", args.step.as_deref()),
        ("repeat-interval", Some(args.repeat_interval.as_str())),
        ("flap-window", Some(args.flap_window.as_str())),
    ] {
        if let Some(v) = v {
            parse_duration(v).map_err(|e| format!("watchfire: --{flag}: {e}"))?;
        }
    }
    let mut body = json!({
        "from": unix(from),
        "to": unix(to),
        "repeat_interval": args.repeat_interval,
        "flap_window": args.flap_window,
    });
    if !files.is_empty() {
        body["rules"] = Value::Array(files);
    }
    for (k, v) in [("step", &args.step), ("group", &args.group), ("rule", &args.rule)] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }

    let url = format!("{}/api/watchfire/rules/backtest", args.url.trim_end_matches('/'));
    let shown = redacted(&url);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from(args.timeout))
        .build()
        .map_err(|e| format!("watchfire: {e}"))?;
    let response = client.post(&url).json(&body).send().map_err(|e| {
        format!(
            "watchfire: cannot reach {}: {}",
            redacted(&args.url),
            redacted(&e.to_string())
        )
    })?;
    let status = response.status();
    let text = response
        .text()
        .map_err(|e| format!("watchfire: reading the answer of {shown}: {}", redacted(&e.to_string())))?;
    let answer: Value = serde_json::from_str(&text).map_err(|_| {
        format!(
            "watchfire: {shown} answered {status} without a JSON body (is it a Watchfire server?): {}",
            text.trim()
        )
    })?;
    if answer["status"] != "success" {
        return Err(format!(
            "watchfire: the backtest failed ({}): {}",
            answer["errorType"].as_str().unwrap_or(status.as_str()),
            answer["error"].as_str().unwrap_or(text.trim())
        ));
    }
    let data = answer["data"].clone();
    if args.output == "json" {
        return serde_json::to_string_pretty(&data)
            .map(|s| s + "\n")
            .map_err(|e| format!("watchfire: {e}"));
    }
    let report: Report =
        serde_json::from_value(data).map_err(|e| format!("watchfire: unexpected backtest report from {shown}: {e}"))?;
    Ok(report.render_table())
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_in_urls_are_not_printed() {
        assert_eq!(redacted("http://localhost:9090"), "http://localhost:9090");
        assert_eq!(
            redacted("https://alice:pw@prom:9090/x"),
            "https://alice:<redacted>@prom:9090/x"
        );
        assert_eq!(
            redacted("error sending request for url (http://a:b@h/api)"),
            "error sending request for url (http://a:<redacted>@h/api)"
        );
    }
}
