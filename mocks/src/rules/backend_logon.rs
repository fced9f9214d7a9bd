//! How the Cloud Connector logs on at an on-premise system, and whom the
//! system logs on (rules `SC-1`..`SC-4`).
//!
//! The Cloud Connector side: the TLS handshake to an HTTPS backend uses the
//! connector's *system certificate* (initial-configuration-http-3f974ea.md:
//! "The Cloud Connector then uses the so-called *system certificate* for all
//! HTTPS requests to backends that request or require a client
//! certificate"); the propagated identity travels as a short-lived
//! certificate in the `SSL_CLIENT_CERT` header (set-up-trust-a4ee70f.md:
//! "For HTTPS, the Cloud Connector forwards the true identity in a
//! short-lived X.509 certificate in an HTTP header named `SSL_CLIENT_CERT`
//! … The SSL handshake, however, is performed through the system
//! certificate"). The mapping's authentication mode (system-mappings-e933fd9.md
//! `authenticationMode`) decides whether an identity is propagated at all and
//! whether the system certificate may log on when none is.
//!
//! The backend side models the ABAP ICM of
//! configure-identity-propagation-for-https-a8bb87a.md: `SSL_CLIENT_CERT` is
//! believed only from a *trusted reverse proxy* — a TLS client certificate
//! whose subject and issuer are configured
//! (`icm/trusted_reverse_proxy_<x> = SUBJECT="…", ISSUER="…"`); "For identity
//! propagation, mutual authentication (mTLS) is mandatory."

use serde::{Deserialize, Serialize};

use super::dn;

/// A mapping's authentication mode (system-mappings-e933fd9.md:
/// "`authenticationMode`: … `NONE,` `NONE_RESTRICTED`, `X509_GENERAL,
/// X509_RESTRICTED, KERBEROS`"). Kerberos is not modelled.
///
/// The older UI names (the principal types of configure-access-control-http
/// before 2026, quoted in a8bb87a): `X.509 Certificate (general usage)` is
/// [`X509General`](Self::X509General), `(strict usage)` is
/// [`X509Restricted`](Self::X509Restricted); the 2.15 UI's "Allow Principal
/// Propagation" + "System Certificate for Logon" are the same two bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum AuthenticationMode {
    /// No identity is propagated; the system certificate may log on.
    #[serde(rename = "NONE", alias = "none")]
    None,
    /// No identity is propagated; the system certificate must not log on.
    #[serde(rename = "NONE_RESTRICTED")]
    NoneRestricted,
    /// Identities are propagated; without one the system certificate may log on.
    #[serde(rename = "X509_GENERAL")]
    X509General,
    /// Identities are propagated; the system certificate never logs on.
    /// idprop's default: "We recommend that you **keep this option
    /// deactivated**" (configure-access-control-http-e7d4927.md, step 9).
    #[default]
    #[serde(rename = "X509_RESTRICTED", alias = "x509")]
    X509Restricted,
}

impl AuthenticationMode {
    /// e933fd9's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::NoneRestricted => "NONE_RESTRICTED",
            Self::X509General => "X509_GENERAL",
            Self::X509Restricted => "X509_RESTRICTED",
        }
    }

    /// `SC-1`: whether an identity received from the cloud is propagated
    /// ("*Allow Principal Propagation* … Defines if any kind of principal
    /// propagation should be allowed over this mapping", e7d4927 step 7).
    pub fn propagates(self) -> bool {
        matches!(self, Self::X509General | Self::X509Restricted)
    }

    /// `SC-2`: whether the system certificate may log on when no identity is
    /// propagated (e7d4927 step 9, "System Certificate for Logon").
    pub fn system_certificate_logs_on(self) -> bool {
        matches!(self, Self::None | Self::X509General)
    }
}

/// What the Cloud Connector puts in `SSL_CLIENT_CERT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslClientCert {
    /// No header: the system certificate of the handshake logs on.
    Absent,
    /// An empty header: "It indicates to the target system that the system
    /// certificate used for trust must not be used for authentication"
    /// (e7d4927 step 9; frequently-asked-questions-f8d6f9a.md: "If the
    /// current request coming in from the cloud does not contain a token
    /// representing an identity, and the access control entry is configured
    /// to not use the system certificate for logon purposes, the Cloud
    /// Connector injects an empty `SSL_CLIENT_CERT` header.").
    Empty,
    /// The short-lived certificate of the propagated identity (`SC-1`).
    ShortLived,
}

/// `SC-1`/`SC-2`: the `SSL_CLIENT_CERT` header for a request under `mode`,
/// with or without an identity from the cloud.
pub fn ssl_client_cert(mode: AuthenticationMode, has_identity: bool) -> SslClientCert {
    match (mode.propagates() && has_identity, mode.system_certificate_logs_on()) {
        (true, _) => SslClientCert::ShortLived,
        (false, true) => SslClientCert::Absent,
        (false, false) => SslClientCert::Empty,
    }
}

/// `SC-3`: how the certificate travels in the header. No page gives the
/// encoding; an HTTP field value cannot hold the line breaks of PEM (RFC
/// 9110 §5.5), and SAP Web Dispatcher / ICM forward client certificates as
/// the base64 of the DER on one line. idprop sends that; the backend accepts
/// it, a PEM block, or a PEM block with escaped `\n` (what the mock sent
/// before), since a real reverse proxy may use any of them.
pub fn encode_certificate(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The DER of an `SSL_CLIENT_CERT` value in any of the spellings of
/// [`encode_certificate`]; `None` when it holds no certificate.
pub fn decode_certificate(value: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.contains("-----BEGIN") {
        let unescaped = v.replace("\\n", "\n");
        return pem::parse(unescaped).ok().filter(|p| p.tag() == "CERTIFICATE").map(|p| p.contents().to_vec());
    }
    let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

/// A reverse proxy the backend trusts to name the user in `SSL_CLIENT_CERT`
/// (`icm/trusted_reverse_proxy_<x>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustedProxy {
    /// RFC 4514 subject of the system certificate.
    pub subject: String,
    /// RFC 4514 issuer of the system certificate.
    pub issuer: String,
}

/// Whom the backend logs on (`SC-4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logon {
    /// The certificate of `SSL_CLIENT_CERT`, its DER (a trusted proxy named
    /// a user).
    Header(Vec<u8>),
    /// The TLS client certificate itself.
    Handshake,
    /// Nobody by certificate: another method (e.g. basic) must log on.
    Anonymous,
}

/// Why the backend refuses a request outright.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogonRefusal {
    #[error(
        "SSL_CLIENT_CERT is honoured only from a trusted reverse proxy over mutual TLS, and this connection presented no client certificate"
    )]
    NoClientCertificate,
    #[error("SSL_CLIENT_CERT sent by {subject} (issuer {issuer}), which is not a trusted reverse proxy")]
    UntrustedProxy { subject: String, issuer: String },
    #[error("SSL_CLIENT_CERT does not hold a certificate")]
    BadHeader,
}

/// `SC-4`: whom a backend that trusts `trusted` logs on, given the TLS
/// client certificate (`(subject, issuer)`, RFC 4514) and the
/// `SSL_CLIENT_CERT` header (`None` when absent).
///
/// a8bb87a: the system "must use this certificate for logging on the real
/// user", and trust comes only from `icm/trusted_reverse_proxy_<x>`; a
/// header from anyone else is refused (403) rather than ignored, so a forged
/// identity never quietly becomes an anonymous call.
pub fn logon(
    trusted: &[TrustedProxy],
    handshake: Option<(&str, &str)>,
    header: Option<&str>,
) -> Result<Logon, LogonRefusal> {
    let Some(value) = header else {
        return Ok(if handshake.is_some() { Logon::Handshake } else { Logon::Anonymous });
    };
    let Some((subject, issuer)) = handshake else {
        return Err(LogonRefusal::NoClientCertificate);
    };
    let same = |a: &str, b: &str| dn::same_name(a, b).unwrap_or(false);
    if !trusted.iter().any(|t| same(&t.subject, subject) && same(&t.issuer, issuer)) {
        return Err(LogonRefusal::UntrustedProxy { subject: subject.into(), issuer: issuer.into() });
    }
    if value.trim().is_empty() {
        return Ok(Logon::Anonymous);
    }
    decode_certificate(value).map(Logon::Header).ok_or(LogonRefusal::BadHeader)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCC: (&str, &str) =
        ("CN=SCC,OU=default,O=idprop TEST ONLY", "CN=idprop TEST ONLY Root CA,O=idprop TEST ONLY");

    fn trusted() -> Vec<TrustedProxy> {
        vec![TrustedProxy { subject: "CN=SCC, OU=default, O=idprop TEST ONLY".into(), issuer: SCC.1.into() }]
    }

    #[test]
    fn the_header_follows_the_mode() {
        use AuthenticationMode::*;
        use SslClientCert::*;
        for (mode, with, without) in [
            (X509General, ShortLived, Absent),
            (X509Restricted, ShortLived, Empty),
            (None, Absent, Absent),
            (NoneRestricted, Empty, Empty),
        ] {
            assert_eq!(ssl_client_cert(mode, true), with, "{mode:?} with identity");
            assert_eq!(ssl_client_cert(mode, false), without, "{mode:?} without identity");
        }
    }

    #[test]
    fn modes_read_the_api_strings_and_the_old_config_words() {
        let m: AuthenticationMode = serde_json::from_str("\"x509\"").unwrap();
        assert_eq!(m, AuthenticationMode::X509Restricted);
        let m: AuthenticationMode = serde_json::from_str("\"NONE_RESTRICTED\"").unwrap();
        assert_eq!(m, AuthenticationMode::NoneRestricted);
        assert!(serde_json::from_str::<AuthenticationMode>("\"KERBEROS\"").is_err());
    }

    #[test]
    fn only_a_trusted_proxy_names_the_user() {
        let t = trusted();
        // The ICM's blanks after commas do not matter (kernel 7.53+, a8bb87a).
        assert_eq!(logon(&t, Some(SCC), Some("MIIB")), Ok(Logon::Header(vec![0x30, 0x82, 0x01])));
        assert_eq!(logon(&t, Some(SCC), Some("")), Ok(Logon::Anonymous));
        assert_eq!(logon(&t, Some(SCC), None), Ok(Logon::Handshake));
        assert_eq!(logon(&t, None, None), Ok(Logon::Anonymous));
        assert_eq!(logon(&t, None, Some("MIIB")), Err(LogonRefusal::NoClientCertificate));
        let stranger = ("CN=admin,O=idprop TEST ONLY", SCC.1);
        assert!(matches!(logon(&t, Some(stranger), Some("MIIB")), Err(LogonRefusal::UntrustedProxy { .. })));
        let wrong_issuer = (SCC.0, "CN=Other CA");
        assert!(matches!(logon(&t, Some(wrong_issuer), Some("")), Err(LogonRefusal::UntrustedProxy { .. })));
        assert_eq!(logon(&t, Some(SCC), Some("%%%")), Err(LogonRefusal::BadHeader));
    }

    #[test]
    fn certificates_round_trip_in_every_spelling() {
        let der = b"0\x03\x02\x01\x00".to_vec();
        assert_eq!(decode_certificate(&encode_certificate(&der)), Some(der.clone()));
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
        assert_eq!(decode_certificate(&pem), Some(der.clone()));
        assert_eq!(decode_certificate(&pem.replace('\n', "\\n")), Some(der));
        assert_eq!(decode_certificate("  "), Option::None);
    }
}
