//! `dns_sd_configs`: targets from DNS records, looked up again every refresh interval
//! (upstream discovery/dns).
//!
//! Each name of a config is queried for the configured record type (SRV, A, AAAA, MX or NS)
//! and becomes one group whose source is the name as written. The lookup follows upstream's
//! `lookupWithSearchPath`: the resolver settings are read from `/etc/resolv.conf` before every
//! lookup, the name is expanded with the search domains as miekg/dns `ClientConfig.NameList`
//! does (ndots), each expansion is asked of the servers in turn until one gives a viable
//! answer (NOERROR or NXDOMAIN), and a truncated UDP answer is asked again over TCP. The first
//! expansion answered with NOERROR wins; when every expansion is NXDOMAIN the name has no
//! targets; when some expansion got no viable answer from any server, the lookup failed. A
//! failed name keeps the group of its last successful lookup (upstream sends no group for it
//! and its manager keeps the old one by source); both outcomes count in
//! `prometheus_sd_dns_lookups_total` and `prometheus_sd_dns_lookup_failures_total`.
//!
//! Queries and answers are encoded with hickory-proto; the small client here (UDP with EDNS,
//! TCP after truncation, 2s per exchange as miekg/dns' default) is Watchfire's own so the
//! outcomes above can be told apart exactly, which a caching resolver does not allow.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::{error, warn};
use watchfire_config::prometheus::{DnsRecordType, DnsSdConfig};
use watchfire_model::Labels;

use crate::metrics::SdMetrics;
use crate::{ADDRESS_LABEL, BoxFuture, GroupSender, Provider, TargetGroup};

/// The name that was looked up, as written in the config.
pub const NAME_LABEL: &str = "__meta_dns_name";
/// An SRV record's target, as in the record (with its final dot).
pub const SRV_RECORD_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
/// An SRV record's port.
pub const SRV_RECORD_PORT_LABEL: &str = "__meta_dns_srv_record_port";
/// An MX record's exchange host, as in the record.
pub const MX_RECORD_TARGET_LABEL: &str = "__meta_dns_mx_record_target";
/// An NS record's name server, as in the record.
pub const NS_RECORD_TARGET_LABEL: &str = "__meta_dns_ns_record_target";

/// The file upstream reads its resolver settings from.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// miekg/dns' default timeout for dialling, writing and reading one exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// miekg/dns' `DefaultMsgSize`: the UDP payload size upstream advertises with EDNS0.
const EDNS_UDP_SIZE: u16 = 4096;

/// The parts of a resolv.conf(5) file that DNS discovery uses, parsed as miekg/dns
/// `ClientConfigFromReader` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` entries in order (addresses, or host names resolved when used).
    pub servers: Vec<String>,
    /// The search domains (`search`, or `domain`; the last such line wins).
    pub search: Vec<String>,
    /// The port of every server (53; resolv.conf cannot set it, tests can).
    pub port: u16,
    /// `options ndots:n` (default 1, clamped to 0..=15).
    pub ndots: usize,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            servers: Vec::new(),
            search: Vec::new(),
            port: 53,
            ndots: 1,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf(5) text. Unknown lines and options are ignored; nothing is an error.
    pub fn parse(src: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in src.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["nameserver", server, ..] => conf.servers.push((*server).to_owned()),
                ["domain", domain, ..] => conf.search = vec![(*domain).to_owned()],
                ["domain"] => conf.search.clear(),
                ["search", domains @ ..] => conf.search = domains.iter().map(|d| (*d).to_owned()).collect(),
                ["options", options @ ..] => {
                    for option in options {
                        if let Some(n) = option.strip_prefix("ndots:") {
                            // Go's Atoi failing yields 0, which is then kept.
                            conf.ndots = n.parse::<i64>().unwrap_or(0).clamp(0, 15) as usize;
                        }
                        // timeout: and attempts: are parsed upstream but not used by DNS SD.
                    }
                }
                _ => {}
            }
        }
        conf
    }

    /// The fully qualified names to try for `name`, in order (miekg/dns `NameList`): a name
    /// ending in a dot is tried alone; otherwise each search domain is appended, and the name
    /// itself is tried first when it has more labels than `ndots`, last otherwise.
    pub fn name_list(&self, name: &str) -> Vec<String> {
        if is_fqdn(name) {
            return vec![name.to_owned()];
        }
        let has_ndots = count_labels(name) > self.ndots;
        let name = fqdn(name);
        let mut names = Vec::with_capacity(self.search.len() + 1);
        if has_ndots {
            names.push(name.clone());
        }
        for domain in &self.search {
            names.push(fqdn(&format!("{name}{domain}")));
        }
        if !has_ndots {
            names.push(name);
        }
        names
    }
}

/// Whether the byte at `i` of `s` is preceded by an odd number of backslashes (escaped).
fn is_escaped(s: &[u8], i: usize) -> bool {
    s[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Whether `s` ends in an unescaped dot (miekg/dns `IsFqdn`).
fn is_fqdn(s: &str) -> bool {
    let b = s.as_bytes();
    b.last() == Some(&b'.') && !is_escaped(b, b.len() - 1)
}

/// `s` with a final dot (miekg/dns `Fqdn`).
fn fqdn(s: &str) -> String {
    if is_fqdn(s) { s.to_owned() } else { format!("{s}.") }
}

/// The number of labels of a name that does not end in a dot (miekg/dns `CountLabel`): one
/// more than its unescaped dots; the empty name counts one.
fn count_labels(s: &str) -> usize {
    let b = s.as_bytes();
    let end = b.len().saturating_sub(1);
    1 + (0..end).filter(|&i| b[i] == b'.' && !is_escaped(b, i)).count()
}

/// Go's `net.JoinHostPort`: IPv6 hosts (anything with a colon) are bracketed.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An address as Go's `net.IP.String` prints it: IPv4-mapped IPv6 addresses in dotted form.
fn ip_string(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Where the resolver settings come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolverConfig {
    /// A resolv.conf(5) file, read before every lookup as upstream does.
    File(PathBuf),
    /// Fixed settings (tests point these at a server of their own).
    Fixed(ResolvConf),
}

/// Looks names up as upstream's DNS discovery does. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Resolver {
    config: Arc<ResolverConfig>,
    timeout: Duration,
}

impl Default for Resolver {
    /// The system's resolver settings ([`RESOLV_CONF`]) and miekg/dns' 2s timeout.
    fn default() -> Self {
        Resolver::new(ResolverConfig::File(PathBuf::from(RESOLV_CONF)), DEFAULT_TIMEOUT)
    }
}

/// Whether a response settles a name: NOERROR (with or without records) or NXDOMAIN.
fn is_viable(msg: &Message) -> bool {
    matches!(
        msg.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    )
}

impl Resolver {
    /// A resolver using `config`; `timeout` bounds connecting, and sending plus receiving, of
    /// each exchange with one server.
    pub fn new(config: ResolverConfig, timeout: Duration) -> Self {
        Resolver {
            config: Arc::new(config),
            timeout,
        }
    }

    /// The answer records for `name` (upstream `lookupWithSearchPath`). An empty list means
    /// the name exists without such records, or every search expansion is NXDOMAIN; an error
    /// means at least one expansion got no viable answer and none got NOERROR.
    pub async fn lookup(&self, name: &str, record_type: RecordType) -> Result<Vec<Record>, String> {
        let conf = match &*self.config {
            ResolverConfig::Fixed(c) => c.clone(),
            ResolverConfig::File(path) => ResolvConf::parse(
                &tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("could not load resolv.conf: {e}"))?,
            ),
        };
        let mut all_viable = true;
        for candidate in conf.name_list(name) {
            match self.lookup_from_any_server(&candidate, record_type, &conf).await {
                Some(msg) if msg.metadata.response_code == ResponseCode::NoError => return Ok(msg.answers),
                Some(_) => {}
                // A later expansion may still answer, but "no such name" can no longer be
                // concluded.
                None => all_viable = false,
            }
        }
        if all_viable {
            Ok(Vec::new())
        } else {
            Err(format!(
                "could not resolve {name:?}: all servers responded with errors to at least one search domain"
            ))
        }
    }

    /// The first viable answer for `name` from the servers in turn (upstream
    /// `lookupFromAnyServer`); failures of single servers are logged.
    async fn lookup_from_any_server(&self, name: &str, record_type: RecordType, conf: &ResolvConf) -> Option<Message> {
        // As upstream's shared client: once a server truncated, the next ones are asked over TCP.
        let mut tcp = false;
        for server in &conf.servers {
            match self.ask_server(name, record_type, server, conf.port, &mut tcp).await {
                Ok(msg) if is_viable(&msg) => return Some(msg),
                Ok(_) => {}
                Err(e) => warn!(server = %server, name = %name, err = %e, "DNS resolution failed"),
            }
        }
        None
    }

    /// Asks one server (upstream `askServerForName`): over UDP with EDNS0, again over TCP
    /// without it when the answer is truncated.
    async fn ask_server(
        &self,
        name: &str,
        record_type: RecordType,
        server: &str,
        port: u16,
        tcp: &mut bool,
    ) -> Result<Message, String> {
        let addr = server_addr(server, port).await?;
        let qname = Name::from_ascii(name).map_err(|e| format!("invalid name {name:?}: {e}"))?;
        let mut edns = !*tcp;
        loop {
            let mut query = Message::query();
            query.metadata.recursion_desired = true;
            query.add_query(Query::query(qname.clone(), record_type));
            if edns {
                let mut e = Edns::new();
                e.set_max_payload(EDNS_UDP_SIZE);
                query.set_edns(e);
            }
            let bytes = query.to_vec().map_err(|e| e.to_string())?;
            let id = query.metadata.id;
            let response = if *tcp {
                exchange_tcp(&bytes, id, addr, self.timeout).await?
            } else {
                exchange_udp(&bytes, id, addr, self.timeout).await?
            };
            if !response.metadata.truncation {
                return Ok(response);
            }
            if *tcp {
                return Err("got truncated message on TCP (64kiB limit exceeded?)".into());
            }
            *tcp = true;
            edns = false;
        }
    }
}

/// The socket address of a `nameserver` entry: an IP address, or a host name resolved by the
/// system (Go's dialer does the same).
async fn server_addr(server: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((server, port))
        .await
        .map_err(|e| format!("dial {}: {e}", host_port(server, port)))?
        .next()
        .ok_or_else(|| format!("dial {}: no address", host_port(server, port)))
}

/// One UDP exchange. Answers with another id are skipped (late answers to earlier queries);
/// anything that does not decode is an error, as in miekg/dns.
async fn exchange_udp(query: &[u8], id: u16, server: SocketAddr, timeout: Duration) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("dial udp {server}: {e}"))?;
    let deadline = tokio::time::Instant::now() + timeout;
    tokio::time::timeout_at(deadline, socket.send(query))
        .await
        .map_err(|_| format!("write udp {server}: i/o timeout"))?
        .map_err(|e| format!("write udp {server}: {e}"))?;
    let mut buf = vec![0u8; usize::from(EDNS_UDP_SIZE)];
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("read udp {server}: i/o timeout"))?
            .map_err(|e| format!("read udp {server}: {e}"))?;
        let msg = Message::from_vec(&buf[..n]).map_err(|e| format!("bad answer from {server}: {e}"))?;
        if msg.metadata.id == id {
            return Ok(msg);
        }
    }
}

/// One TCP exchange (two-byte length prefix); an answer with another id is an error.
async fn exchange_tcp(query: &[u8], id: u16, server: SocketAddr, timeout: Duration) -> Result<Message, String> {
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect(server))
        .await
        .map_err(|_| format!("dial tcp {server}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {server}: {e}"))?;
    let len = u16::try_from(query.len()).map_err(|_| "query too long".to_owned())?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    let deadline = tokio::time::Instant::now() + timeout;
    let exchange = async {
        stream.write_all(&framed).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let body = tokio::time::timeout_at(deadline, exchange)
        .await
        .map_err(|_| format!("tcp {server}: i/o timeout"))?
        .map_err(|e| format!("tcp {server}: {e}"))?;
    let msg = Message::from_vec(&body).map_err(|e| format!("bad answer from {server}: {e}"))?;
    if msg.metadata.id != id {
        return Err("id mismatch".into());
    }
    Ok(msg)
}

/// The hickory record type of a configured type.
pub fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
    }
}

/// The group of `name` from its answer records (upstream `refreshOne`). Records are turned
/// into targets by their own type, whatever was asked: SRV gives `target:port`, MX and NS
/// give `host:port` and A and AAAA `ip:port` with the configured `port`; CNAMEs are skipped
/// and other types skipped with a warning. Upstream sets the record labels that do not apply
/// to the empty string; an empty label value means "no label", so they are simply absent.
pub fn target_group(name: &str, answers: &[Record], port: u16) -> TargetGroup {
    let mut targets = Vec::with_capacity(answers.len());
    for record in answers {
        let (address, meta, srv_port) = match &record.data {
            RData::SRV(srv) => {
                let target = srv.target.to_ascii();
                let address = host_port(target.trim_end_matches('.'), srv.port);
                (address, Some((SRV_RECORD_TARGET_LABEL, target)), srv.port.to_string())
            }
            RData::MX(mx) => {
                let target = mx.exchange.to_ascii();
                let address = host_port(target.trim_end_matches('.'), port);
                (address, Some((MX_RECORD_TARGET_LABEL, target)), String::new())
            }
            RData::NS(ns) => {
                let target = ns.0.to_ascii();
                let address = host_port(target.trim_end_matches('.'), port);
                (address, Some((NS_RECORD_TARGET_LABEL, target)), String::new())
            }
            RData::A(a) => (host_port(&ip_string(IpAddr::V4(a.0)), port), None, String::new()),
            RData::AAAA(aaaa) => (host_port(&ip_string(IpAddr::V6(aaaa.0)), port), None, String::new()),
            // A query for A records may be answered with the CNAME chain too.
            RData::CNAME(_) => continue,
            _ => {
                warn!(name = %name, record = %record.name, record_type = %record.record_type(), "Invalid record");
                continue;
            }
        };
        let mut pairs = vec![(ADDRESS_LABEL, address), (NAME_LABEL, name.to_owned())];
        pairs.extend(meta);
        pairs.push((SRV_RECORD_PORT_LABEL, srv_port));
        targets.push(Labels::from_pairs(pairs));
    }
    TargetGroup {
        source: name.to_owned(),
        targets,
        labels: Labels::empty(),
    }
}

/// Resolves the names of one `dns_sd_configs` entry every refresh interval.
#[derive(Debug)]
pub struct DnsProvider {
    names: Vec<String>,
    record_type: RecordType,
    port: u16,
    refresh_interval: Duration,
    resolver: Resolver,
    job: String,
    metrics: Arc<SdMetrics>,
}

impl DnsProvider {
    /// A provider for `cfg` of job `job`, asking `resolver`. A name listed twice is looked up
    /// once (upstream's manager keeps one group per source).
    pub fn new(cfg: &DnsSdConfig, job: &str, resolver: Resolver, metrics: Arc<SdMetrics>) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(cfg.names.len());
        for n in &cfg.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        DnsProvider {
            names,
            record_type: record_type(cfg.record_type),
            port: cfg.port,
            refresh_interval: cfg.refresh_interval.to_std().max(Duration::from_millis(10)),
            resolver,
            job: job.to_owned(),
            metrics,
        }
    }

    /// Looks every name up, concurrently; the group of each name in config order, `None`
    /// where the lookup failed (logged and counted).
    pub async fn refresh(&self) -> Vec<Option<TargetGroup>> {
        let start = Instant::now();
        let mut lookups = tokio::task::JoinSet::new();
        for (i, name) in self.names.iter().enumerate() {
            let resolver = self.resolver.clone();
            let name = name.clone();
            let record_type = self.record_type;
            lookups.spawn(async move { (i, resolver.lookup(&name, record_type).await) });
        }
        let mut groups = vec![None; self.names.len()];
        while let Some(done) = lookups.join_next().await {
            let Ok((i, result)) = done else { continue };
            self.metrics.dns_lookups.inc();
            match result {
                Ok(answers) => groups[i] = Some(target_group(&self.names[i], &answers, self.port)),
                Err(e) => {
                    self.metrics.dns_lookup_failures.inc();
                    error!(job = %self.job, name = %self.names[i], err = %e, "Error refreshing DNS targets");
                }
            }
        }
        self.metrics
            .refresh_duration
            .observe(&["dns", &self.job], start.elapsed().as_secs_f64());
        groups
    }
}

impl Provider for DnsProvider {
    fn run(self: Box<Self>, tx: GroupSender) -> BoxFuture<()> {
        Box::pin(async move {
            let mut current: Vec<Option<TargetGroup>> = vec![None; self.names.len()];
            let mut last: Option<Vec<TargetGroup>> = None;
            // Upstream refreshes on a ticker: a slow refresh skips ticks rather than bunching.
            let mut ticker = tokio::time::interval(self.refresh_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = tx.closed() => return,
                }
                for (slot, fresh) in current.iter_mut().zip(self.refresh().await) {
                    if fresh.is_some() {
                        *slot = fresh;
                    }
                }
                let groups: Vec<TargetGroup> = current.iter().flatten().cloned().collect();
                if last.as_ref() != Some(&groups) {
                    if tx.send(groups.clone()).await.is_err() {
                        return;
                    }
                    last = Some(groups);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SRV, TXT};

    use super::*;

    fn record(data: RData) -> Record {
        Record::from_rdata(Name::from_ascii("q.example.").unwrap(), 60, data)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn labels(g: &TargetGroup) -> Vec<String> {
        g.targets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn srv_records_give_target_and_port() {
        let g = target_group(
            "_mysql._tcp.db.example.com.",
            &[
                record(RData::SRV(SRV::new(0, 0, 3306, name("db1.example.com.")))),
                record(RData::SRV(SRV::new(0, 0, 3306, name("db2.example.com.")))),
                record(RData::TXT(TXT::new(vec!["this should be discarded".into()]))),
            ],
            0,
        );
        assert_eq!(g.source, "_mysql._tcp.db.example.com.");
        assert!(g.labels.is_empty());
        assert_eq!(
            labels(&g),
            [
                r#"{__address__="db1.example.com:3306", __meta_dns_name="_mysql._tcp.db.example.com.", __meta_dns_srv_record_port="3306", __meta_dns_srv_record_target="db1.example.com."}"#,
                r#"{__address__="db2.example.com:3306", __meta_dns_name="_mysql._tcp.db.example.com.", __meta_dns_srv_record_port="3306", __meta_dns_srv_record_target="db2.example.com."}"#,
            ]
        );
    }

    #[test]
    fn address_records_use_the_configured_port() {
        let g = target_group(
            "web.example.com.",
            &[
                record(RData::CNAME(CNAME(name("alias.example.com.")))),
                record(RData::A(A::new(192, 0, 2, 2))),
                record(RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
                // Go prints IPv4-mapped addresses in dotted form, without brackets.
                record(RData::AAAA(AAAA("::ffff:192.0.2.9".parse().unwrap()))),
                record(RData::AAAA(AAAA("2001:db8:0:0:1:0:0:1".parse().unwrap()))),
                record(RData::AAAA(AAAA("::1.2.3.4".parse().unwrap()))),
            ],
            80,
        );
        let addresses: Vec<&str> = g.targets.iter().map(|t| t.get(ADDRESS_LABEL).unwrap()).collect();
        assert_eq!(
            addresses,
            [
                "192.0.2.2:80",
                "[::1]:80",
                "192.0.2.9:80",
                "[2001:db8::1:0:0:1]:80",
                "[::102:304]:80"
            ]
        );
        assert_eq!(
            labels(&g)[0],
            r#"{__address__="192.0.2.2:80", __meta_dns_name="web.example.com."}"#
        );
    }

    #[test]
    fn mx_and_ns_records_name_their_host() {
        let g = target_group(
            "example.com.",
            &[
                record(RData::MX(MX::new(0, name("smtp1.example.com.")))),
                record(RData::NS(NS(name("ns1.example.com.")))),
            ],
            25,
        );
        assert_eq!(
            labels(&g),
            [
                r#"{__address__="smtp1.example.com:25", __meta_dns_mx_record_target="smtp1.example.com.", __meta_dns_name="example.com."}"#,
                r#"{__address__="ns1.example.com:25", __meta_dns_name="example.com.", __meta_dns_ns_record_target="ns1.example.com."}"#,
            ]
        );
        // No records (NXDOMAIN everywhere, or no data): a group without targets.
        let empty = target_group("example.com.", &[], 25);
        assert_eq!(empty.source, "example.com.");
        assert!(empty.targets.is_empty());
    }

    #[test]
    fn resolv_conf_is_parsed_as_miekg_does() {
        let c = ResolvConf::parse(
            "# comment\n; other\nnameserver 10.0.0.1\nnameserver ::1 # trailing\nnameserver\n\
             domain first.example\nsearch a.example b.example\noptions rotate ndots:3 timeout:1\n",
        );
        assert_eq!(c.servers, ["10.0.0.1", "::1"]);
        assert_eq!(c.search, ["a.example", "b.example"]);
        assert_eq!(c.ndots, 3);
        assert_eq!(c.port, 53);
        // The last of domain and search wins; ndots is clamped, and garbage counts as 0.
        let c = ResolvConf::parse("search a.example\ndomain d.example\noptions ndots:99\n");
        assert_eq!(c.search, ["d.example"]);
        assert_eq!(c.ndots, 15);
        assert_eq!(ResolvConf::parse("options ndots:x").ndots, 0);
        assert_eq!(ResolvConf::parse("options ndots:-2").ndots, 0);
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
        assert!(ResolvConf::parse("search").search.is_empty());
    }

    #[test]
    fn search_path_follows_ndots() {
        let c = ResolvConf {
            search: vec!["a.example".into(), "b.example.".into()],
            ..ResolvConf::default()
        };
        // Fully qualified: alone.
        assert_eq!(c.name_list("web.example.com."), ["web.example.com."]);
        // One label, ndots 1: the search domains first.
        assert_eq!(c.name_list("web"), ["web.a.example.", "web.b.example.", "web."]);
        // Two labels, more than ndots: the name first.
        assert_eq!(
            c.name_list("_http._tcp"),
            ["_http._tcp.", "_http._tcp.a.example.", "_http._tcp.b.example."]
        );
        let c = ResolvConf { ndots: 2, ..c };
        assert_eq!(
            c.name_list("_http._tcp"),
            ["_http._tcp.a.example.", "_http._tcp.b.example.", "_http._tcp."]
        );
        // Escaped dots are not label separators, and do not qualify a name.
        assert_eq!(count_labels(r"a\.b"), 1);
        assert_eq!(count_labels(r"a\\.b"), 2);
        assert_eq!(count_labels(""), 1);
        assert!(!is_fqdn(r"a\."));
        assert!(is_fqdn(r"a\\."));
        assert_eq!(ResolvConf::default().name_list("web"), ["web."]);
        assert_eq!(ResolvConf { ndots: 0, ..c }.name_list("web")[0], "web.");
    }

    #[test]
    fn hosts_are_joined_as_go_does() {
        assert_eq!(host_port("db.example.com", 1), "db.example.com:1");
        assert_eq!(host_port("fe80::1", 53), "[fe80::1]:53");
        assert_eq!(host_port("", 53), ":53");
    }
}
