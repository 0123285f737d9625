//! Choosing a parser from a `Content-Type`, as Prometheus 3 does (`extractMediaType` in
//! `model/textparse/interface.go`).
//!
//! Only the media type counts: parameters must be well formed but their values (`version`,
//! `proto`, `encoding`, `escaping`, `charset`) are not looked at, so `text/plain` of any
//! version gets the text parser and any `application/vnd.google.protobuf` the delimited
//! protobuf parser. A blank, malformed or unknown type is an error; applying
//! `fallback_scrape_protocol` is the caller's decision.

use crate::{Error, Options, Parser};

/// The three exposition formats, by the parser each needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain` (versions 0.0.4 and 1.0.0).
    Text,
    /// `application/openmetrics-text` (versions 0.0.1 and 1.0.0).
    OpenMetrics,
    /// `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`.
    Protobuf,
}

impl Format {
    /// The format a `Content-Type` header names.
    pub fn from_content_type(content_type: &str) -> Result<Format, Error> {
        if content_type.is_empty() {
            return Err(Error::BlankContentType);
        }
        let media_type = parse_media_type(content_type).map_err(|reason| Error::InvalidContentType {
            content_type: content_type.to_owned(),
            reason: reason.to_owned(),
        })?;
        match media_type.as_str() {
            "text/plain" => Ok(Format::Text),
            "application/openmetrics-text" => Ok(Format::OpenMetrics),
            "application/vnd.google.protobuf" => Ok(Format::Protobuf),
            _ => Err(Error::UnsupportedContentType {
                content_type: content_type.to_owned(),
            }),
        }
    }

    /// The format of a `fallback_scrape_protocol` / `scrape_protocols` value
    /// (`PrometheusProto`, `PrometheusText0.0.4`, `PrometheusText1.0.0`, `OpenMetricsText0.0.1`,
    /// `OpenMetricsText1.0.0`).
    pub fn from_scrape_protocol(protocol: &str) -> Option<Format> {
        match protocol {
            "PrometheusProto" => Some(Format::Protobuf),
            "PrometheusText0.0.4" | "PrometheusText1.0.0" => Some(Format::Text),
            "OpenMetricsText0.0.1" | "OpenMetricsText1.0.0" => Some(Format::OpenMetrics),
            _ => None,
        }
    }

    /// A parser of this format over `body`.
    pub fn parser(self, body: &[u8], options: Options) -> Parser<'_> {
        Parser::with_options(self, body, options)
    }
}

/// A parser for a response with header `content_type`, with default options.
pub fn parser_for<'a>(content_type: &str, body: &'a [u8]) -> Result<Parser<'a>, Error> {
    Ok(Parser::new(Format::from_content_type(content_type)?, body))
}

/// RFC 2045 token characters: printable ASCII other than space and the tspecials.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// The lower-cased media type of a `Content-Type` value after checking its syntax the way Go's
/// `mime.ParseMediaType` does (a type token, an optional `/subtype`, then `; name=value`
/// parameters with token or quoted-string values, no name twice).
fn parse_media_type(value: &str) -> Result<String, &'static str> {
    let (media, mut params) = value.split_once(';').map_or((value, None), |(m, p)| (m, Some(p)));
    let media = media.trim().to_ascii_lowercase();
    let (kind, rest) = take_token(&media);
    if kind.is_empty() {
        return Err("no media type");
    }
    if !rest.is_empty() {
        let Some(sub) = rest.strip_prefix('/') else {
            return Err("expected slash after first token");
        };
        let (subtype, rest) = take_token(sub);
        if subtype.is_empty() {
            return Err("expected token after slash");
        }
        if !rest.is_empty() {
            return Err("unexpected content after media subtype");
        }
    }
    let mut seen: Vec<String> = Vec::new();
    while let Some(p) = params {
        let p = p.trim_start();
        if p.is_empty() {
            break;
        }
        let (name, rest) = take_token(p);
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('=').filter(|_| !name.is_empty()) else {
            return Err("invalid media parameter");
        };
        let rest = rest.trim_start();
        let after = if let Some(quoted) = rest.strip_prefix('"') {
            let mut escaped = false;
            let mut close = None;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(close) = close else {
                return Err("invalid media parameter");
            };
            &quoted[close + 1..]
        } else {
            let (v, after) = take_token(rest);
            if v.is_empty() {
                return Err("invalid media parameter");
            }
            after
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err("duplicate parameter name");
        }
        seen.push(name);
        let after = after.trim_start();
        params = match after.strip_prefix(';') {
            Some(next) => Some(next),
            None if after.is_empty() => None,
            None => return Err("invalid media parameter"),
        };
    }
    Ok(media)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            parse_media_type("text/plain; version=0.0.4").as_deref(),
            Ok("text/plain")
        );
        assert_eq!(
            parse_media_type("Text/Plain;charset=\"utf-8\";").as_deref(),
            Ok("text/plain")
        );
        assert_eq!(parse_media_type("text").as_deref(), Ok("text"));
        assert_eq!(parse_media_type("text/"), Err("expected token after slash"));
        assert_eq!(parse_media_type("/plain"), Err("no media type"));
        assert_eq!(parse_media_type("text/plain; version"), Err("invalid media parameter"));
        assert_eq!(
            parse_media_type("text/plain; a=1; A=2"),
            Err("duplicate parameter name")
        );
        assert_eq!(
            parse_media_type("text/plain x"),
            Err("unexpected content after media subtype")
        );
        assert_eq!(parse_media_type("text/plain; a=\"x"), Err("invalid media parameter"));
    }
}
