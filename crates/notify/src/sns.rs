//! Amazon SNS (upstream `notify/sns`, which uses the AWS SDK): the `Publish` action of SNS's
//! query API, a form-encoded `POST` signed with AWS Signature Version 4 ([`sign`], written
//! here with `ring`'s HMAC and SHA-256).
//!
//! The message is cut to 256 KiB, or to 1600 bytes for SMS (`phone_number`), and then carries
//! the attribute `truncated=true`; a FIFO topic (`.fifo`) gets the group key hash as
//! `MessageGroupId` and `MessageDeduplicationId`.
//!
//! Credentials: `sigv4.access_key`/`secret_key`, else the `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) environment variables. The region is
//! `sigv4.region`, else `AWS_REGION` or `AWS_DEFAULT_REGION`. Not supported yet (the
//! notification fails without retry, saying so): `sigv4.profile` and `sigv4.role_arn`
//! (shared config files and STS), and instance or container credentials.
//! `use_aws_http_client` has no effect: requests always go through the `http_config` client.
//!
//! Retries: transport errors, 5xx, and throttling errors (which the AWS SDK retries itself).

use std::time::Duration;

use ring::{digest, hmac};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::alertmanager::receivers::SnsConfig;

use crate::http::{self, HttpClient, key_hash};
use crate::integrations::Ctx;

/// SNS's message size limit.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The limit for SMS messages (upstream counts bytes, despite calling them characters).
pub const MAX_SMS_BYTES: usize = 1600;

/// AWS credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// The SigV4 signing key for a day (`YYYYMMDD`), region and service.
pub fn signing_key(secret_key: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date);
    let k_region = hmac_sha256(&k_date, region);
    let k_service = hmac_sha256(&k_region, service);
    hmac_sha256(&k_service, "aws4_request")
}

/// What a request is signed over.
#[derive(Debug)]
pub struct SignInput<'a> {
    pub method: &'a str,
    /// The URL's path, already percent-encoded (`/` when empty).
    pub path: &'a str,
    /// The raw query string (sorted and canonicalised here), or "".
    pub query: &'a str,
    /// The headers to sign (name, value); names are lower-cased and sorted here. Must include
    /// `host` and `x-amz-date`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The canonical request of AWS Signature Version 4.
pub fn canonical_request(input: &SignInput<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    headers.sort();
    let signed = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let mut query: Vec<&str> = input.query.split('&').filter(|p| !p.is_empty()).collect();
    query.sort();
    let query: Vec<String> = query
        .iter()
        .map(|p| {
            if p.contains('=') {
                (*p).to_owned()
            } else {
                format!("{p}=")
            }
        })
        .collect();
    let path = if input.path.is_empty() { "/" } else { input.path };
    let request = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{signed}\n{}",
        input.method,
        query.join("&"),
        sha256_hex(input.body)
    );
    (request, signed)
}

/// The `Authorization` header value for a request.
pub fn sign(input: &SignInput<'_>, creds: &Credentials) -> String {
    let (request, signed) = canonical_request(input);
    let date = &input.amz_date[..8];
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        sha256_hex(request.as_bytes())
    );
    let key = signing_key(&creds.secret_key, date, input.region, input.service);
    let signature = hex(&hmac_sha256(&key, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key
    )
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Cuts `s` to at most `n` bytes at a character boundary.
fn cut_bytes(s: &str, n: usize) -> (&str, bool) {
    if s.len() <= n {
        return (s, false);
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// The text between `<tag>` and `</tag>` in an XML answer.
fn xml_field<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(&body[start..end])
}

pub(crate) async fn sns(ctx: &Ctx<'_>, cfg: &SnsConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let v4 = &cfg.sigv4;
    if !v4.profile.is_empty() || !v4.role_arn.is_empty() {
        return Err(NotifyError::permanent(
            "sns: sigv4.profile and sigv4.role_arn are not supported by Watchfire yet; use access_key and secret_key or the AWS_* environment variables",
        ));
    }
    let creds = if !v4.access_key.is_empty() {
        Credentials {
            access_key: v4.access_key.clone(),
            secret_key: v4.secret_key.expose().to_owned(),
            session_token: None,
        }
    } else {
        match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key), Some(secret_key)) => Credentials {
                access_key,
                secret_key,
                session_token: env("AWS_SESSION_TOKEN"),
            },
            _ => {
                return Err(NotifyError::permanent(
                    "sns: no AWS credentials: set sigv4.access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                ));
            }
        }
    };
    let region = Some(v4.region.clone())
        .filter(|r| !r.is_empty())
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| NotifyError::permanent("sns: region not configured in sns.sigv4.region or AWS_REGION"))?;

    let mut params: Vec<(String, String)> = vec![
        ("Action".into(), "Publish".into()),
        ("Version".into(), "2010-03-31".into()),
    ];
    let mut attributes: Vec<(String, String)> = Vec::new();
    for (k, v) in &cfg.attributes {
        attributes.push((r(k)?, r(v)?));
    }
    let mut limit = MAX_MESSAGE_BYTES;
    let mut fifo = false;
    let mut members: Vec<(&str, String)> = Vec::new();
    if !cfg.topic_arn.is_empty() {
        let arn = r(&cfg.topic_arn)?;
        fifo = arn.ends_with(".fifo");
        members.push(("TopicArn", arn));
    }
    if !cfg.phone_number.is_empty() {
        members.push(("PhoneNumber", r(&cfg.phone_number)?));
        limit = MAX_SMS_BYTES;
    }
    if !cfg.target_arn.is_empty() {
        members.push(("TargetArn", r(&cfg.target_arn)?));
    }
    let message = r(&cfg.message)?;
    let (message, cut) = cut_bytes(&message, limit);
    if cut {
        attributes.push(("truncated".into(), "true".into()));
    }
    members.push(("Message", message.to_owned()));
    if fifo {
        let hash = key_hash(&ctx.group.group_key);
        members.push(("MessageDeduplicationId", hash.clone()));
        members.push(("MessageGroupId", hash));
    }
    if !cfg.subject.is_empty() {
        members.push(("Subject", r(&cfg.subject)?));
    }
    attributes.sort();
    attributes.dedup_by(|a, b| a.0 == b.0);
    for (i, (name, value)) in attributes.into_iter().enumerate() {
        let p = format!("MessageAttributes.entry.{}", i + 1);
        params.push((format!("{p}.Name"), name));
        params.push((format!("{p}.Value.DataType"), "String".into()));
        params.push((format!("{p}.Value.StringValue"), value));
    }
    members.sort_by_key(|(k, _)| *k);
    params.extend(members.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();

    let api_url = r(&cfg.api_url)?;
    let endpoint = if api_url.is_empty() {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://sns.{region}.{suffix}/")
    } else {
        api_url
    };
    let url = url::Url::parse(&endpoint).map_err(|e| NotifyError::permanent(format!("sns: api_url: {e}")))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err(NotifyError::permanent("sns: api_url has no host")),
    };
    // A Timestamp formats in UTC.
    let amz_date = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let mut signed: Vec<(&str, &str)> = vec![
        ("content-type", content_type),
        ("host", &host),
        ("x-amz-date", &amz_date),
    ];
    if let Some(t) = &creds.session_token {
        signed.push(("x-amz-security-token", t));
    }
    let authorization = sign(
        &SignInput {
            method: "POST",
            path: url.path(),
            query: url.query().unwrap_or_default(),
            headers: &signed,
            body: body.as_bytes(),
            amz_date: &amz_date,
            region: &region,
            service: "sns",
        },
        &creds,
    );
    let secrets = [creds.secret_key.as_str()];
    let mut req = client
        .request(reqwest::Method::POST, url.as_str())?
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("X-Amz-Date", &amz_date)
        .header(
            reqwest::header::AUTHORIZATION,
            crate::integrations::sensitive_header(&authorization, "sns")?,
        );
    if let Some(t) = &creds.session_token {
        req = req.header("X-Amz-Security-Token", crate::integrations::sensitive_header(t, "sns")?);
    }
    let resp = http::send(req.body(body), Duration::ZERO, "sns", &secrets).await?;
    if resp.status.is_success() {
        return Ok(());
    }
    let code = xml_field(&resp.body, "Code").unwrap_or_default();
    let message = xml_field(&resp.body, "Message").unwrap_or(resp.body.trim());
    let throttled = matches!(
        code,
        "Throttling" | "ThrottlingException" | "Throttled" | "TooManyRequestsException"
    );
    Err(NotifyError {
        message: http::redact(
            &format!(
                "sns: unexpected status code {}: {code}: {message}",
                resp.status.as_u16()
            ),
            &secrets,
        ),
        retryable: resp.status.is_server_error() || throttled,
        reason: if resp.status.is_server_error() {
            FailureReason::ServerError
        } else {
            FailureReason::ClientError
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example of a signed POST request (General Reference, "Signed Signature
    /// Version 4 Requests Examples"): IAM ListUsers, 2011-09-09, us-east-1.
    #[test]
    fn signature_matches_the_aws_documentation_example() {
        let creds = Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let auth = sign(
            &SignInput {
                method: "POST",
                path: "/",
                query: "",
                headers: &[
                    ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                    ("Host", "iam.amazonaws.com"),
                    ("X-Amz-Date", "20110909T233600Z"),
                ],
                body: b"Action=ListUsers&Version=2010-05-08",
                amz_date: "20110909T233600Z",
                region: "us-east-1",
                service: "iam",
            },
            &creds,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
        );
    }

    #[test]
    fn cuts_at_character_boundaries() {
        assert_eq!(cut_bytes("abc", 3), ("abc", false));
        assert_eq!(cut_bytes("aé", 2), ("a", true));
        assert_eq!(xml_field("<E><Code>X</Code></E>", "Code"), Some("X"));
    }
}
