//! `node_netstat_<Protocol>_<Field>` from `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6`, filtered by upstream's default field pattern (node_exporter
//! netstat_linux.go).

use std::path::{Path, PathBuf};

use regex::Regex;
use watchfire_textparse::MetricType;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// Upstream's `--collector.netstat.fields` default (current master, which adds
/// `TcpExt_TCPOFOQueue` and `TcpExt_TCPRcvQDrop` to node_exporter 1.5's list).
pub const DEFAULT_NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// `(protocol, field, value)` from the header/value line pairs of `netstat` and `snmp`.
pub(crate) fn parse_pairs(text: &str, path: &Path) -> Result<Vec<(String, String, String)>, Error> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, pair) in lines.chunks(2).enumerate() {
        let [names, values] = pair else {
            return Err(Error::parse(path, 2 * i + 1, "header line without a value line"));
        };
        let mut names = names.split_whitespace();
        let mut values = values.split_whitespace();
        let (Some(proto), Some(proto2)) = (names.next(), values.next()) else {
            continue;
        };
        if proto != proto2 {
            return Err(Error::parse(
                path,
                2 * i + 2,
                format!("value line {proto2} follows header {proto}"),
            ));
        }
        let proto = proto.trim_end_matches(':');
        let names: Vec<&str> = names.collect();
        let values: Vec<&str> = values.collect();
        if names.len() != values.len() {
            return Err(Error::parse(
                path,
                2 * i + 2,
                format!("field count mismatch for {proto}"),
            ));
        }
        for (n, v) in names.iter().zip(values) {
            out.push((proto.to_owned(), (*n).to_owned(), v.to_owned()));
        }
    }
    Ok(out)
}

/// `(protocol, field, value)` from `snmp6`'s `Ip6InReceives 123` lines: the protocol ends at
/// the first `6`.
pub(crate) fn parse_snmp6(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some(six) = key.find('6') {
            out.push((key[..=six].to_owned(), key[six + 1..].to_owned(), value.to_owned()));
        }
    }
    out
}

/// The `netstat` collector.
#[derive(Debug)]
pub struct Netstat {
    proc_net: PathBuf,
    fields: Regex,
}

impl Netstat {
    pub fn new(paths: &Paths) -> Self {
        Self::with_fields(paths, DEFAULT_NETSTAT_FIELDS).expect("the default field pattern is a valid regex")
    }

    /// The collector exposing the `Protocol_Field` keys that match `fields`.
    pub fn with_fields(paths: &Paths, fields: &str) -> Result<Self, Error> {
        Ok(Netstat {
            proc_net: paths.proc.join("net"),
            fields: Regex::new(fields).map_err(|source| Error::Pattern {
                pattern: fields.to_owned(),
                source,
            })?,
        })
    }
}

impl Collector for Netstat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let mut all = Vec::new();
        for file in ["netstat", "snmp"] {
            let path = self.proc_net.join(file);
            all.extend(parse_pairs(&read(&path)?, &path)?);
        }
        // Without IPv6 there is no snmp6; not an error.
        let snmp6 = self.proc_net.join("snmp6");
        match std::fs::read_to_string(&snmp6) {
            Ok(t) => all.extend(parse_snmp6(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(snmp6, e)),
        }
        for (proto, field, raw) in all {
            let key = format!("{proto}_{field}");
            if !self.fields.is_match(&key) {
                continue;
            }
            let v: f64 = raw.parse().map_err(|_| Error::Parse {
                path: self.proc_net.clone(),
                line: 0,
                msg: format!("invalid value {raw:?} for {key}"),
            })?;
            sink.add(
                &format!("node_netstat_{key}"),
                &format!("Statistic {proto}{field}."),
                MetricType::Unknown,
                &[],
                v,
            );
        }
        Ok(())
    }
}
