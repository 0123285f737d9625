//! Email over SMTP (upstream `notify/email/email.go`), with lettre: implicit TLS on port 465
//! or with `force_implicit_tls`, else STARTTLS when `require_tls`; PLAIN or LOGIN auth;
//! a multipart/alternative message with the text part then the HTML part.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::alertmanager::receivers::EmailConfig;

use crate::http::{self, key_hash};
use crate::integrations::{Ctx, read_secret_file};

/// How long one SMTP conversation step may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

fn perm(m: impl Into<String>) -> NotifyError {
    NotifyError::permanent(m)
}

/// A random token for Message-Id.
fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    // A failing system RNG leaves zeros; the timestamp still makes the id unique enough.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Builds the message (without sending it): headers rendered, the text and HTML parts.
pub(crate) fn build_message(ctx: &Ctx<'_>, cfg: &EmailConfig) -> Result<Message, NotifyError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let has = |name: &str| cfg.headers.keys().any(|k| k.eq_ignore_ascii_case(name));
    let subject_default = "{{ template \"email.default.subject\" . }}".to_owned();
    if !has("Subject") {
        headers.push(("Subject".into(), ctx.render(&subject_default)?));
    }
    if !has("To") {
        headers.push(("To".into(), ctx.render(&cfg.to)?));
    }
    if !has("From") {
        headers.push(("From".into(), ctx.render(&cfg.from)?));
    }
    for (k, v) in &cfg.headers {
        headers.push((k.clone(), ctx.render(v)?));
    }
    let mut builder = Message::builder();
    let mut from_set = false;
    let mut to_set = false;
    for (name, value) in &headers {
        match name.to_ascii_lowercase().as_str() {
            "from" => {
                let mbs: Mailboxes = value
                    .parse()
                    .map_err(|e| perm(format!("parse 'from' addresses: {e}")))?;
                let list: Vec<Mailbox> = mbs.into_iter().collect();
                if list.len() != 1 {
                    return Err(perm(format!(
                        "must be exactly one 'from' address (got: {})",
                        list.len()
                    )));
                }
                builder = builder.from(list[0].clone());
                from_set = true;
            }
            "to" => {
                let mbs: Mailboxes = value.parse().map_err(|e| perm(format!("parse 'to' addresses: {e}")))?;
                builder = builder.mailbox(lettre::message::header::To::from(mbs));
                to_set = true;
            }
            "subject" => builder = builder.subject(value.clone()),
            _ => {
                let hn = HeaderName::new_from_ascii(name.clone())
                    .map_err(|_| perm(format!("invalid header name {name:?}")))?;
                builder = builder.raw_header(HeaderValue::new(hn, value.clone()));
            }
        }
    }
    if !from_set || !to_set {
        return Err(perm("email: missing from or to address"));
    }
    if cfg.threading.enabled {
        let date = if cfg.threading.thread_by_date == "none" {
            String::new()
        } else {
            ctx.group.now.strftime("%Y-%m-%d").to_string()
        };
        let hash = key_hash(&ctx.group.group_key);
        let thread = format!("<alert-{}-{date}@alertmanager>", &hash[..16]);
        for n in ["References", "In-Reply-To"] {
            builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(n), thread.clone()));
        }
    }
    let host = if cfg.hello.is_empty() {
        "localhost"
    } else {
        cfg.hello.as_str()
    };
    let now = ctx.group.now;
    builder = builder
        .message_id(Some(format!("<{}.{}@{host}>", now.as_nanosecond(), random_hex())))
        .date(std::time::SystemTime::now());
    let text = ctx.render(&cfg.text)?;
    let html = ctx.render(&cfg.html)?;
    let mut parts = MultiPart::alternative().build();
    let mut n = 0;
    if !text.is_empty() {
        parts = parts.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text));
        n += 1;
    }
    if !html.is_empty() {
        parts = parts.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html));
        n += 1;
    }
    let msg = if n == 0 {
        builder.body(String::new())
    } else {
        builder.multipart(parts)
    };
    msg.map_err(|e| perm(format!("building the email: {e}")))
}

fn tls_parameters(cfg: &EmailConfig, ctx: &Ctx<'_>) -> Result<TlsParameters, NotifyError> {
    let tls = cfg.tls_config.clone().unwrap_or_default();
    let domain = tls.server_name.clone().unwrap_or_else(|| cfg.smarthost.host.clone());
    let mut b = TlsParameters::builder(domain);
    let ca = match (&tls.ca, &tls.ca_file) {
        (Some(s), _) => Some(s.as_bytes().to_vec()),
        (None, Some(f)) => Some(
            std::fs::read(http::resolve(ctx.config_dir, f)).map_err(|e| perm(format!("reading CA file {f}: {e}")))?,
        ),
        _ => None,
    };
    if let Some(ca) = ca {
        b = b.add_root_certificate(Certificate::from_pem(&ca).map_err(|e| perm(format!("invalid CA: {e}")))?);
    }
    if tls.insecure_skip_verify {
        b = b.dangerous_accept_invalid_certs(true);
    }
    b.build_rustls().map_err(|e| perm(format!("TLS configuration: {e}")))
}

/// Sends one notification by email.
pub(crate) async fn email(ctx: &Ctx<'_>, cfg: &EmailConfig) -> Result<(), NotifyError> {
    let msg = build_message(ctx, cfg)?;
    if cfg.smarthost.is_empty() {
        return Err(perm("email: no smarthost configured"));
    }
    let port: u16 = cfg
        .smarthost
        .port
        .parse()
        .map_err(|_| perm(format!("invalid smarthost port {:?}", cfg.smarthost.port)))?;
    let implicit = cfg.force_implicit_tls.unwrap_or(port == 465);
    let require_tls = cfg.require_tls.unwrap_or(true);
    let tls = if implicit {
        Tls::Wrapper(tls_parameters(cfg, ctx)?)
    } else if require_tls {
        Tls::Required(tls_parameters(cfg, ctx)?)
    } else {
        Tls::None
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.smarthost.host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if !cfg.hello.is_empty() {
        b = b.hello_name(ClientId::Domain(cfg.hello.clone()));
    }
    let mut secrets: Vec<String> = Vec::new();
    if !cfg.auth_username.is_empty() {
        if !cfg.auth_secret.is_empty() || !cfg.auth_secret_file.is_empty() {
            return Err(perm(
                "email: CRAM-MD5 authentication (auth_secret) is not supported yet",
            ));
        }
        let password = if !cfg.auth_password.is_empty() {
            cfg.auth_password.expose().to_owned()
        } else if !cfg.auth_password_file.is_empty() {
            read_secret_file(ctx.config_dir, &cfg.auth_password_file, "auth_password_file")?
        } else {
            String::new()
        };
        secrets.push(password.clone());
        b = b
            .credentials(Credentials::new(cfg.auth_username.clone(), password))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let transport = b.build();
    match transport.send(msg).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let mut message = format!("email to {}: {e}", cfg.smarthost.host);
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                message.push_str(&format!(": {s}"));
                src = s.source();
            }
            let reason = if e.is_permanent() {
                FailureReason::ClientError
            } else if e.is_timeout() {
                FailureReason::ContextDeadlineExceeded
            } else {
                FailureReason::Other
            };
            // Upstream retries every network and SMTP failure.
            Err(NotifyError {
                message: http::redact(&message, &refs),
                retryable: true,
                reason,
            })
        }
    }
}
