//! Service discovery blocks, shared by scrape configs and Alertmanager configs.
//!
//! Watchfire implements `static_configs`, `file_sd_configs`, `http_sd_configs` and
//! `dns_sd_configs`; they are fully typed, with upstream's defaults and checks
//! (discovery/{file,http,dns}). Every other `*_sd_configs` key upstream registers parses (so
//! the rest of the file is still checked) and is refused as "not supported yet".

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use watchfire_model::Duration;

use super::checked::{Check, nullable, string, without_unsupported};

/// The `*_sd_configs` keys upstream (v3.14) registers that Watchfire does not implement yet.
pub const UNSUPPORTED_DISCOVERY: [&str; 33] = [
    "aws_sd_configs",
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "ec2_sd_configs",
    "ecs_sd_configs",
    "elasticache_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kubernetes_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "msk_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "oci_sd_configs",
    "openstack_sd_configs",
    "outscale_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "rds_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "stackit_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// Declares a config struct with the service discovery keys and the HTTP client fields
/// inlined after its own fields, as upstream inlines `discovery.Configs` and
/// `HTTPClientConfig`. Generates `unsupported_discovery()`, the unsupported blocks present.
/// The unsupported keys must match [`UNSUPPORTED_DISCOVERY`] (a unit test checks it).
macro_rules! with_service_discovery {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $crate::prometheus::discovery::with_service_discovery! {
            @unsupported [
                aws_sd_configs azure_sd_configs consul_sd_configs digitalocean_sd_configs
                docker_sd_configs dockerswarm_sd_configs ec2_sd_configs ecs_sd_configs
                elasticache_sd_configs eureka_sd_configs gce_sd_configs hetzner_sd_configs
                ionos_sd_configs kubernetes_sd_configs kuma_sd_configs lightsail_sd_configs
                linode_sd_configs marathon_sd_configs msk_sd_configs nerve_sd_configs
                nomad_sd_configs oci_sd_configs openstack_sd_configs outscale_sd_configs
                ovhcloud_sd_configs puppetdb_sd_configs rds_sd_configs scaleway_sd_configs
                serverset_sd_configs stackit_sd_configs triton_sd_configs uyuni_sd_configs
                vultr_sd_configs
            ]
            $(#[$meta])*
            $vis struct $name {
                $( $(#[$fmeta])* $fvis $field : $ty ),*
            }
        }
    };
    (
        @unsupported [ $($sd:ident)* ]
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),*
        }
    ) => {
        $crate::http::with_http_client! {
            $(#[$meta])*
            $vis struct $name {
                $( $(#[$fmeta])* $fvis $field : $ty, )*
                /// Target groups written in the file.
                #[serde(
                    default,
                    deserialize_with = "crate::prometheus::checked::list",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub static_configs: Vec<$crate::prometheus::StaticConfig>,
                /// Target groups read from JSON or YAML files.
                #[serde(
                    default,
                    deserialize_with = "crate::prometheus::checked::list",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub file_sd_configs: Vec<$crate::prometheus::FileSdConfig>,
                /// Target groups fetched from an HTTP endpoint.
                #[serde(
                    default,
                    deserialize_with = "crate::prometheus::checked::list",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub http_sd_configs: Vec<$crate::prometheus::HttpSdConfig>,
                /// Targets found through DNS records.
                #[serde(
                    default,
                    deserialize_with = "crate::prometheus::checked::list",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub dns_sd_configs: Vec<$crate::prometheus::DnsSdConfig>,
                $(
                    /// Not supported yet: parsed, then refused.
                    #[serde(default, skip_serializing)]
                    pub $sd: $crate::yaml::Unsupported,
                )*
            }
        }

        impl $name {
            /// The service discovery blocks present that Watchfire does not implement yet,
            /// with their keys.
            pub(crate) fn unsupported_discovery(&self) -> Vec<(&'static str, &$crate::yaml::Unsupported)> {
                let all: Vec<(&'static str, &$crate::yaml::Unsupported)> =
                    vec![$( (stringify!($sd), &self.$sd) ),*];
                all.into_iter().filter(|(_, block)| block.is_some()).collect()
            }

            /// The keys of every unsupported block this type declares.
            #[cfg(test)]
            pub(crate) fn unsupported_discovery_keys() -> Vec<&'static str> {
                vec![$( stringify!($sd) ),*]
            }
        }
    };
}

pub(crate) use with_service_discovery;

/// A static target group: `targets` (host:port) sharing `labels`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// Addresses (`host:port`), each becoming a target's `__address__`.
    #[serde(default, deserialize_with = "nullable")]
    pub targets: Vec<String>,
    /// Labels given to every target of the group.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Check for StaticConfig {
    const WHAT: &'static str = "section in static_configs";

    fn check(&mut self) -> Result<(), String> {
        match self.labels.keys().find(|n| n.is_empty()) {
            Some(name) => Err(format!("{name:?} is not a valid label name")),
            None => Ok(()),
        }
    }
}

fn default_file_refresh() -> Duration {
    Duration::from_secs(5 * 60)
}

/// Targets read from files in the same JSON or YAML format as `static_configs`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files to read, ending in .json, .yml or .yaml; the last path element may contain `*`.
    /// Relative paths are relative to the config file's directory.
    #[serde(default, deserialize_with = "nullable")]
    pub files: Vec<String>,
    /// How often to re-read the files besides watching them (default 5m).
    #[serde(default = "default_file_refresh")]
    pub refresh_interval: Duration,
}

/// Upstream's pattern for file SD paths (discovery/file `patFileSDName`): an allowed
/// extension, and no `/` after the first `*`.
fn is_valid_file_sd_path(path: &str) -> bool {
    const EXTENSIONS: [&str; 6] = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"];
    let glob_ok = path.split_once('*').is_none_or(|(_, after)| !after.contains('/'));
    glob_ok && EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

impl Check for FileSdConfig {
    const WHAT: &'static str = "section in file_sd_configs";

    fn check(&mut self) -> Result<(), String> {
        if self.files.is_empty() {
            return Err("file service discovery config must contain at least one path name".into());
        }
        match self.files.iter().find(|f| !is_valid_file_sd_path(f)) {
            Some(f) => Err(format!(
                "path name {f:?} is not valid for file discovery: it must end in .json, .yml or .yaml, \
                 and only its last element may contain '*'"
            )),
            None => Ok(()),
        }
    }
}

fn default_http_refresh() -> Duration {
    Duration::from_secs(60)
}

crate::http::with_http_client! {
    /// Targets fetched periodically from an HTTP endpoint returning the `static_configs`
    /// format as JSON.
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpSdConfig {
        /// The http or https URL to fetch.
        #[serde(default, deserialize_with = "string")]
        pub url: String,
        /// How often to fetch it (default 1m).
        #[serde(default = "default_http_refresh")]
        pub refresh_interval: Duration,
    }
}

impl Check for HttpSdConfig {
    const WHAT: &'static str = "section in http_sd_configs";

    fn check(&mut self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("URL is missing".into());
        }
        let url = url::Url::parse(&self.url).map_err(|e| format!("invalid URL {:?}: {e}", self.url))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("URL scheme must be 'http' or 'https'".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("host is missing in URL".into());
        }
        match without_unsupported(self.http_client().validate()).first() {
            Some(e) => Err(super::checked::message(e)),
            None => Ok(()),
        }
    }
}

/// The DNS record type a `dns_sd_configs` block queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DnsRecordType {
    /// SRV records: targets and ports come from the records.
    #[default]
    Srv,
    /// IPv4 addresses, with the configured port.
    A,
    /// IPv6 addresses, with the configured port.
    Aaaa,
    /// Mail exchangers, with the configured port.
    Mx,
    /// Name servers, with the configured port.
    Ns,
}

impl DnsRecordType {
    /// The type as written in configs, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRecordType::Srv => "SRV",
            DnsRecordType::A => "A",
            DnsRecordType::Aaaa => "AAAA",
            DnsRecordType::Mx => "MX",
            DnsRecordType::Ns => "NS",
        }
    }
}

impl fmt::Display for DnsRecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DnsRecordType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DnsRecordType {
    /// Accepts any case, as upstream does.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.to_ascii_uppercase().as_str() {
            "SRV" => DnsRecordType::Srv,
            "A" => DnsRecordType::A,
            "AAAA" => DnsRecordType::Aaaa,
            "MX" => DnsRecordType::Mx,
            "NS" => DnsRecordType::Ns,
            _ => return Err(D::Error::custom(format!("invalid DNS-SD records type {s}"))),
        })
    }
}

fn default_dns_refresh() -> Duration {
    Duration::from_secs(30)
}

/// Targets found by resolving DNS names periodically.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// The names to resolve.
    #[serde(default, deserialize_with = "nullable")]
    pub names: Vec<String>,
    /// How often to resolve them (default 30s).
    #[serde(default = "default_dns_refresh")]
    pub refresh_interval: Duration,
    /// SRV (default), A, AAAA, MX or NS.
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// The port of the targets; required for every type except SRV.
    #[serde(default)]
    pub port: u16,
}

impl Check for DnsSdConfig {
    const WHAT: &'static str = "section in dns_sd_configs";

    fn check(&mut self) -> Result<(), String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        if self.record_type != DnsRecordType::Srv && self.port == 0 {
            return Err("a port is required in DNS-SD configs for all record types except SRV".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sd_paths_follow_upstream_pattern() {
        for good in [
            "a.json",
            "foo/*.slow.yml",
            "/etc/x/*.YAML",
            "dir/file*.yaml",
            "a*b*.json",
        ] {
            assert!(is_valid_file_sd_path(good), "{good}");
        }
        for bad in ["a.txt", "a.json.bak", "*/x.json", "dir*/x.yml", "x.Json", "json"] {
            assert!(!is_valid_file_sd_path(bad), "{bad}");
        }
    }

    #[test]
    fn dns_types_are_case_insensitive() {
        let c: DnsSdConfig =
            crate::yaml::from_str("names: [x]\ntype: aaaa\nport: 9100\n", std::path::Path::new("d.yml")).unwrap();
        assert_eq!(c.record_type, DnsRecordType::Aaaa);
        assert_eq!(c.refresh_interval, Duration::from_secs(30));
    }
}
