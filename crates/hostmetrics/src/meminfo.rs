//! `node_memory_*` from `/proc/meminfo` (node_exporter meminfo.go, meminfo_linux.go).
//!
//! Every line becomes a gauge named after its key, with `Active(anon)` spelled `Active_anon`,
//! and `_bytes` appended (value times 1024) when the line has a `kB` unit; lines without a
//! unit (`HugePages_Total`) keep their count. This is node_exporter 1.x's generic mapping
//! (`parseMemInfo`); the newest upstream lists fields one by one and so omits a few newer
//! kernel fields (`KReclaimable`, `FileHugePages`, `SecPageTables`, …) that this keeps.

use std::path::PathBuf;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `meminfo` collector.
#[derive(Debug)]
pub struct Meminfo {
    path: PathBuf,
}

impl Meminfo {
    pub fn new(paths: &Paths) -> Self {
        Meminfo {
            path: paths.proc.join("meminfo"),
        }
    }
}

/// `Active(anon)` → `Active_anon`: the parenthesized part becomes a `_`-joined suffix.
fn metric_key(key: &str) -> String {
    match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}_{}{}", &key[..open], &key[open + 1..close], &key[close + 1..])
        }
        _ => key.to_owned(),
    }
}

/// Parses meminfo text into `(metric suffix, value)` pairs, in file order.
pub(crate) fn parse(text: &str, path: &std::path::Path) -> Result<Vec<(String, f64)>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        // Some kernels (CentOS 6.2 with 3.10.90) write empty lines.
        if parts.is_empty() {
            continue;
        }
        let Some(key) = parts[0].strip_suffix(':') else {
            return Err(Error::parse(path, i + 1, format!("no ':' after key in {line:?}")));
        };
        let Some(raw) = parts.get(1) else {
            return Err(Error::parse(path, i + 1, format!("no value in {line:?}")));
        };
        let mut value: f64 = raw
            .parse()
            .map_err(|_| Error::parse(path, i + 1, format!("invalid value {raw:?}")))?;
        let mut key = metric_key(key);
        match parts.len() {
            2 => {}
            3 => {
                // The only unit the kernel writes is kB (KiB).
                value *= 1024.0;
                key.push_str("_bytes");
            }
            _ => return Err(Error::parse(path, i + 1, format!("too many fields in {line:?}"))),
        }
        out.push((key, value));
    }
    Ok(out)
}

impl Collector for Meminfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        for (key, value) in parse(&text, &self.path)? {
            sink.gauge(
                &format!("node_memory_{key}"),
                &format!("Memory information field {key}."),
                &[],
                value,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parenthesized_keys_become_suffixes() {
        assert_eq!(metric_key("Active(anon)"), "Active_anon");
        assert_eq!(metric_key("Inactive(file)"), "Inactive_file");
        assert_eq!(metric_key("MemTotal"), "MemTotal");
    }
}
