//! The service's TLS certificate as its clients see it: a handshake with the listener, the
//! leaf certificate's subject and expiry. The chain is *not* verified — this reads when the
//! certificate runs out (the checklist's "Certificate Renewal"), it does not trust it — so an
//! expired or self-signed certificate is still read and reported.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, ErrorKind, Result};

/// A listener's certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertInfo {
    /// `host:port` asked.
    pub endpoint: String,
    /// The leaf's subject.
    pub subject: String,
    /// When it runs out.
    pub not_after: DateTime<Utc>,
    /// Days from `now` to then (negative once expired).
    pub days_left: i64,
}

/// Accepts any chain: only the certificate's dates are read. Handshake signatures are still
/// checked, so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_err(endpoint: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("TLS to {endpoint}: {e}")).with_operation("tls")
}

/// Handshake with `endpoint` (`host:port`) as `server_name` (SNI) and read the leaf
/// certificate, within `timeout`.
pub async fn certificate(
    endpoint: &str,
    server_name: &str,
    now: DateTime<Utc>,
    timeout: Duration,
) -> Result<CertInfo> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(endpoint, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| Error::config(format!("TLS server name {server_name:?}: {e}")))?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect(endpoint)
            .await
            .map_err(|e| tls_err(endpoint, e))?;
        let tls = TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| tls_err(endpoint, e))?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| tls_err(endpoint, "no certificate presented"))?;
        Ok::<_, Error>(leaf)
    };
    let der = tokio::time::timeout(timeout, work).await.map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "TLS to {endpoint}: no handshake within {}",
                crate::units::format_duration(timeout)
            ),
        )
    })??;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("{endpoint} sent a certificate that does not parse: {e}"),
        )
    })?;
    let ts = cert.validity().not_after.timestamp();
    let not_after = DateTime::from_timestamp(ts, 0).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("{endpoint}: notAfter {ts} out of range"),
        )
    })?;
    Ok(CertInfo {
        endpoint: endpoint.to_string(),
        subject: cert.subject().to_string(),
        not_after,
        days_left: (not_after - now).num_days(),
    })
}
