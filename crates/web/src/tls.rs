//! TLS for the server, from web.config.yml's `tls_server_config`, with rustls.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use watchfire_config::http::TlsVersion;
use watchfire_config::web::{ClientAuthType, TlsServerConfig};

use crate::Error;

fn tls_err(config_path: &Path, message: impl Into<String>) -> Error {
    Error::Tls {
        path: config_path.display().to_string(),
        message: message.into(),
    }
}

/// PEM from a file or inline in the web config; a file wins when both are set, as upstream.
enum PemSource<'a> {
    File(&'a Path),
    Inline(&'a str),
}

impl std::fmt::Display for PemSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::File(p) => write!(f, "{}", p.display()),
            PemSource::Inline(_) => f.write_str("the inline PEM"),
        }
    }
}

fn pem_source<'a>(file: Option<&'a Path>, inline: Option<&'a str>) -> Option<PemSource<'a>> {
    match (file, inline) {
        (Some(f), _) => Some(PemSource::File(f)),
        (None, Some(i)) => Some(PemSource::Inline(i)),
        (None, None) => None,
    }
}

fn read_certs(pem: &PemSource<'_>, config_path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = match pem {
        PemSource::File(file) => CertificateDer::pem_file_iter(file)
            .map_err(|e| {
                tls_err(
                    config_path,
                    format!("reading certificates from {}: {e}", file.display()),
                )
            })?
            .collect(),
        PemSource::Inline(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect(),
    };
    let certs = certs.map_err(|e| tls_err(config_path, format!("parsing certificates in {pem}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(config_path, format!("no certificate found in {pem}")));
    }
    Ok(certs)
}

/// Builds the TLS acceptor for `config` (loaded from `config_path`, named in errors), offering
/// HTTP/2 through ALPN when `http2` is set.
///
/// rustls speaks TLS 1.2 and 1.3 only, so a `min_version` of TLS10 or TLS11 means TLS 1.2,
/// and a `max_version` below TLS12 is refused. Choosing cipher suites and curves by Go's
/// names, `client_allowed_sans`, and the client-auth modes that accept unverified
/// certificates are not supported yet and are refused rather than ignored.
pub fn acceptor(config: &TlsServerConfig, http2: bool, config_path: &Path) -> Result<TlsAcceptor, Error> {
    let cert = pem_source(config.cert_file.as_deref(), config.cert.as_deref());
    let key = pem_source(config.key_file.as_deref(), config.key.as_ref().map(|k| k.expose()));
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err(tls_err(config_path, "a certificate and a key must both be set"));
    };
    if !config.cipher_suites.is_empty() {
        return Err(tls_err(
            config_path,
            "not supported yet: cipher_suites (rustls chooses its own safe suites)",
        ));
    }
    if !config.curve_preferences.is_empty() {
        return Err(tls_err(config_path, "not supported yet: curve_preferences"));
    }
    if config.client_allowed_sans.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(tls_err(config_path, "not supported yet: client_allowed_sans"));
    }
    let certs = read_certs(&cert, config_path)?;
    let private_key = match &key {
        PemSource::File(f) => PrivateKeyDer::from_pem_file(f),
        PemSource::Inline(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
    }
    .map_err(|e| tls_err(config_path, format!("reading the private key from {key}: {e}")))?;

    let (min, max) = (config.min_version, config.max_version);
    if max < TlsVersion::TLS12 {
        return Err(tls_err(config_path, "max_version below TLS12 is not supported"));
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = vec![];
    if min <= TlsVersion::TLS12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::TLS13 {
        versions.push(&rustls::version::TLS13);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| tls_err(config_path, e.to_string()))?;

    let auth = config.client_auth();
    let verifier = match auth {
        ClientAuthType::NoClientCert => None,
        ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert => {
            let Some(ca) = pem_source(config.client_ca_file.as_deref(), config.client_ca.as_deref()) else {
                return Err(tls_err(
                    config_path,
                    "client_ca_file is required to verify client certificates",
                ));
            };
            let mut roots = RootCertStore::empty();
            for c in read_certs(&ca, config_path)? {
                roots
                    .add(c)
                    .map_err(|e| tls_err(config_path, format!("client CA {ca}: {e}")))?;
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let b = if auth == ClientAuthType::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            Some(b.build().map_err(|e| tls_err(config_path, e.to_string()))?)
        }
        other => {
            return Err(tls_err(
                config_path,
                format!("not supported yet: client_auth_type {other:?}"),
            ));
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut server = builder
        .with_single_cert(certs, private_key)
        .map_err(|e| tls_err(config_path, format!("certificate and key do not match: {e}")))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    if http2 {
        server.alpn_protocols.insert(0, b"h2".to_vec());
    }
    Ok(TlsAcceptor::from(Arc::new(server)))
}
