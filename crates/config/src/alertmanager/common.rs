//! Value types shared by alertmanager.yml sections (upstream config/common and config.go):
//! validated URLs, secret URLs, templated webhook URLs, `host:port` addresses and Go-syntax
//! durations, plus serde helpers for YAML nulls.

use std::fmt;

use serde::de::{self, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::{REDACTED, Secret};

/// Serde helper: a null (or absent) value becomes the type's default, as a nil slice or map
/// does in Go.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Serde helper for `skip_serializing_if`.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// An `http`/`https` URL (upstream `config/common.URL`), kept as written.
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    raw: String,
    parsed: url::Url,
}

impl Url {
    /// Parses and checks a URL the way upstream's `ParseURL` does: the scheme must be `http`
    /// or `https` and the host must not be empty.
    pub fn parse(s: &str) -> Result<Url, String> {
        let parsed = match url::Url::parse(s) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => return Err("unsupported scheme \"\" for URL".into()),
            Err(url::ParseError::EmptyHost) => return Err("missing host for URL".into()),
            Err(e) => return Err(format!("parse {s:?}: {e}")),
        };
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(format!("unsupported scheme {:?} for URL", parsed.scheme()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("missing host for URL".into());
        }
        Ok(Url {
            raw: s.to_owned(),
            parsed,
        })
    }

    /// The URL as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.parsed
    }

    /// Appends `/` to the path unless it already ends with one (upstream does this for the
    /// OpsGenie, WeChat and VictorOps API URLs, which are joined with relative paths).
    pub fn with_trailing_slash(mut self) -> Url {
        if !self.parsed.path().ends_with('/') {
            let path = format!("{}/", self.parsed.path());
            self.parsed.set_path(&path);
        }
        self.raw = self.parsed.to_string();
        self
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.raw)
    }
}

impl Serialize for Url {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Url::parse(&s).map_err(D::Error::custom)
    }
}

/// A URL that is itself a secret (a webhook URL with a token in it). It prints and serializes
/// as `<secret>`. A `<secret>` placeholder read back from a serialized config is accepted and
/// holds no URL, as upstream does for round trips through the API.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Option<Url>);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: Url) -> Self {
        SecretUrl(Some(url))
    }

    /// The URL, unless this is a `<secret>` placeholder.
    pub fn url(&self) -> Option<&Url> {
        self.0.as_ref()
    }

    /// The URL text (empty for a placeholder), for comparisons.
    pub fn expose(&self) -> &str {
        self.0.as_ref().map_or("", Url::as_str)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == REDACTED {
            return Ok(SecretUrl(None));
        }
        // Never echo the secret URL in the error.
        Url::parse(&s)
            .map(SecretUrl::new)
            .map_err(|e| D::Error::custom(e.replace(&s, "[REDACTED]")))
    }
}

/// A webhook URL that may contain Go template actions (`{{ ... }}`), rendered per
/// notification. Only untemplated values are checked as URLs. Serializes as `<secret>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretTemplateUrl(Secret);

impl SecretTemplateUrl {
    /// The URL or template text.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Whether no URL is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `s` contains template actions; an action opened and never closed is an error.
/// (Upstream parses the whole template; this checks the delimiters only.)
pub(crate) fn contains_templating(s: &str) -> Result<bool, String> {
    if !s.contains("{{") {
        return Ok(false);
    }
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) => rest = &after[close + 2..],
            None => return Err("unclosed action".into()),
        }
    }
    Ok(true)
}

impl fmt::Debug for SecretTemplateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretTemplateUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SecretTemplateUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s == REDACTED {
            return Ok(SecretTemplateUrl(Secret::new(s)));
        }
        match contains_templating(&s) {
            Err(e) => return Err(D::Error::custom(format!("invalid template syntax: {e}"))),
            Ok(true) => {}
            Ok(false) => {
                Url::parse(&s).map_err(|e| D::Error::custom(format!("invalid URL: {e}")))?;
            }
        }
        Ok(SecretTemplateUrl(Secret::new(s)))
    }
}

/// A `host:port` address (the SMTP smarthost). The port is required; the host may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: String,
}

impl HostPort {
    /// Whether neither host nor port is set.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty() && self.port.is_empty()
    }

    /// Parses `host:port` or `[ipv6]:port` (Go's `net.SplitHostPort`); the empty string is the
    /// empty address.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        if s.is_empty() {
            return Ok(HostPort::default());
        }
        let fail = |why: &str| format!("address {s}: {why}");
        let missing_port = "missing port in address";
        let too_many = "too many colons in address";
        let colon = s.rfind(':').ok_or_else(|| fail(missing_port))?;
        let (host, open_from, close_from) = if let Some(inner) = s.strip_prefix('[') {
            let end = inner
                .find(']')
                .map(|i| i + 1)
                .ok_or_else(|| fail("missing ']' in address"))?;
            if end + 1 == s.len() {
                return Err(fail(missing_port));
            }
            if end + 1 != colon {
                return Err(fail(if s.as_bytes()[end + 1] == b':' {
                    too_many
                } else {
                    missing_port
                }));
            }
            (&s[1..end], 1, end + 1)
        } else {
            let host = &s[..colon];
            if host.contains(':') {
                return Err(fail(too_many));
            }
            (host, 0, 0)
        };
        if s[open_from..].contains('[') {
            return Err(fail("unexpected '[' in address"));
        }
        if s[close_from..].contains(']') {
            return Err(fail("unexpected ']' in address"));
        }
        let port = &s[colon + 1..];
        if port.is_empty() {
            return Err(format!("address {s:?}: port cannot be empty"));
        }
        Ok(HostPort {
            host: host.to_owned(),
            port: port.to_owned(),
        })
    }
}

impl fmt::Display for HostPort {
    /// `host:port`, bracketing an IPv6 host; empty when unset.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            Ok(())
        } else if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        HostPort::parse(&s).map_err(D::Error::custom)
    }
}

/// A duration in Go's `time.ParseDuration` syntax (`1h30m`, `1.5s`, `300ms`), used where
/// upstream's config field is a Go `time.Duration` rather than a Prometheus duration: the
/// notifier `timeout`s and Pushover's `retry`, `expire` and `ttl`. A bare YAML integer is a
/// number of nanoseconds, as Go's YAML decoder reads it. Prints as Go does (`1m0s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

const NANOS_PER_SECOND: u128 = 1_000_000_000;

impl GoDuration {
    /// The zero duration.
    pub const ZERO: GoDuration = GoDuration(0);

    /// A duration of `n` nanoseconds.
    pub const fn from_nanos(n: i64) -> Self {
        GoDuration(n)
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: i64) -> Self {
        GoDuration(s * NANOS_PER_SECOND as i64)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whether the duration is zero (for a timeout: no timeout).
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The equivalent `std::time::Duration`; negative values clamp to zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0).unsigned_abs())
    }

    /// Parses Go's duration syntax: an optional sign, then `0` or one or more decimal numbers
    /// (fractions allowed) each followed by a unit among `ns us µs ms s m h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let invalid = || format!("time: invalid duration {s:?}");
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if body == "0" {
            return Ok(GoDuration(0));
        }
        if body.is_empty() {
            return Err(invalid());
        }
        let mut total: u128 = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int_part, after) = rest.split_at(int_len);
            let (frac_part, after) = match after.strip_prefix('.') {
                Some(a) => {
                    let n = a.bytes().take_while(u8::is_ascii_digit).count();
                    a.split_at(n)
                }
                None => ("", after),
            };
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = after
                .find(|c: char| c == '.' || c.is_ascii_digit())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => NANOS_PER_SECOND,
                "m" => 60 * NANOS_PER_SECOND,
                "h" => 3600 * NANOS_PER_SECOND,
                "" => return Err(format!("time: missing unit in duration {s:?}")),
                other => return Err(format!("time: unknown unit {other:?} in duration {s:?}")),
            };
            let whole: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| invalid())?
            };
            let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
            // Fraction digits beyond nanosecond precision cannot change the result.
            let digits = &frac_part[..frac_part.len().min(20)];
            if !digits.is_empty() {
                let numerator: u128 = digits.parse().map_err(|_| invalid())?;
                let denominator = 10u128.pow(u32::try_from(digits.len()).map_err(|_| invalid())?);
                part += numerator * scale / denominator;
            }
            total = total.checked_add(part).ok_or_else(invalid)?;
            if total > i64::MAX as u128 + u128::from(neg) {
                return Err(invalid());
            }
            rest = after;
        }
        let signed = if neg {
            (total as i128).wrapping_neg()
        } else {
            total as i128
        };
        i64::try_from(signed).map(GoDuration).map_err(|_| invalid())
    }
}

/// `v` with `prec` implied decimals, trailing zeros dropped: (1500, 3) is `1.5`.
fn with_fraction(v: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let (whole, frac) = (v / div, v % div);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String`: `0s`, `1.5µs`, `300ms`, `1m0s`, `2h45m0.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let u = self.0.unsigned_abs();
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000 {
            return write!(f, "{sign}{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{sign}{}µs", with_fraction(u, 3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{sign}{}ms", with_fraction(u, 6));
        }
        let total_secs = u / 1_000_000_000;
        let secs = with_fraction(u % 60_000_000_000, 9);
        let (mins, hours) = ((total_secs / 60) % 60, total_secs / 3600);
        if hours > 0 {
            write!(f, "{sign}{hours}h{mins}m{secs}s")
        } else if total_secs >= 60 {
            write!(f, "{sign}{mins}m{secs}s")
        } else {
            write!(f, "{sign}{secs}s")
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration such as 10s, 1m30s or 500ms")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                GoDuration::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                Ok(GoDuration(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                i64::try_from(v)
                    .map(GoDuration)
                    .map_err(|_| E::custom("duration out of range"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_print_like_go() {
        for (s, nanos, printed) in [
            ("0", 0, "0s"),
            ("10s", 10_000_000_000, "10s"),
            ("1m", 60_000_000_000, "1m0s"),
            ("1h", 3_600_000_000_000, "1h0m0s"),
            ("1.5s", 1_500_000_000, "1.5s"),
            ("300ms", 300_000_000, "300ms"),
            ("1.5us", 1_500, "1.5µs"),
            ("2h45m0.5s", 9_900_500_000_000, "2h45m0.5s"),
            ("-1m", -60_000_000_000, "-1m0s"),
            (".5m", 30_000_000_000, "30s"),
        ] {
            let d = GoDuration::parse(s).unwrap();
            assert_eq!(d.as_nanos(), nanos, "{s}");
            assert_eq!(d.to_string(), printed, "{s}");
        }
        assert!(GoDuration::parse("1d").unwrap_err().contains("unknown unit \"d\""));
        assert!(GoDuration::parse("10").unwrap_err().contains("missing unit"));
        assert!(GoDuration::parse("").is_err());
        assert!(GoDuration::parse("s").is_err());
        assert!(GoDuration::parse("3000000h").is_err());
    }

    #[test]
    fn host_port_like_go() {
        assert_eq!(HostPort::parse("localhost:25").unwrap().to_string(), "localhost:25");
        assert_eq!(HostPort::parse(":25").unwrap().host, "");
        let v6 = HostPort::parse("[fd12:3456:789a::1]:25").unwrap();
        assert_eq!((v6.host.as_str(), v6.port.as_str()), ("fd12:3456:789a::1", "25"));
        assert_eq!(v6.to_string(), "[fd12:3456:789a::1]:25");
        assert!(HostPort::parse("localhost").unwrap_err().contains("missing port"));
        assert!(
            HostPort::parse("localhost:")
                .unwrap_err()
                .contains("port cannot be empty")
        );
        assert!(HostPort::parse("a:b:c").unwrap_err().contains("too many colons"));
        assert!(HostPort::parse("").unwrap().is_empty());
    }

    #[test]
    fn urls_need_http_scheme_and_host() {
        assert!(Url::parse("https://example.com/x").is_ok());
        assert!(
            Url::parse("example.com/webhook")
                .unwrap_err()
                .contains("unsupported scheme")
        );
        assert!(
            Url::parse("ftp://example.com")
                .unwrap_err()
                .contains("unsupported scheme \"ftp\"")
        );
        assert!(Url::parse("http://").unwrap_err().contains("missing host"));
        let u = Url::parse("https://api.opsgenie.com/v2").unwrap().with_trailing_slash();
        assert_eq!(u.as_str(), "https://api.opsgenie.com/v2/");
    }

    #[test]
    fn templating_delimiters() {
        assert_eq!(contains_templating("http://x/{{ .A }}"), Ok(true));
        assert_eq!(contains_templating("http://x/"), Ok(false));
        assert!(contains_templating("http://x/{{ .A").is_err());
    }
}
