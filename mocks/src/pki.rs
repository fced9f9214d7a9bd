//! The test PKI: the root CA that signs every mock's TLS certificate, the
//! Cloud Connector's issuing CA, and the RSA keys the UAA signs tokens with.
//!
//! Everything is committed under `fixtures/` and compiled into the crate, so a
//! stack starts without generating a single RSA key (RSA generation costs tens
//! of milliseconds; start-up must not). Leaf certificates for virtual hosts are
//! minted on demand with one ECDSA P-256 key per PKI instance and cached per
//! host name. Regenerate the fixtures with `cargo run -- fixtures regenerate`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Marker put in every subject and every fixture file: nothing here may be
/// mistaken for a real key.
pub const TEST_ONLY: &str = "TEST ONLY";

const ROOT_CA_PEM: &str = include_str!("../../fixtures/pki/root-ca.pem");
const ROOT_CA_KEY: &str = include_str!("../../fixtures/pki/root-ca.key.pem");
const CONNECTOR_CA_PEM: &str = include_str!("../../fixtures/pki/connector-ca.pem");
const CONNECTOR_CA_KEY: &str = include_str!("../../fixtures/pki/connector-ca.key.pem");
const OTHER_CA_PEM: &str = include_str!("../../fixtures/pki/other-ca.pem");
const OTHER_CA_KEY: &str = include_str!("../../fixtures/pki/other-ca.key.pem");
const JWT_KEYS: [(&str, &str); 5] = [
    ("key-1", include_str!("../../fixtures/keys/jwt-key-1.pem")),
    ("key-2", include_str!("../../fixtures/keys/jwt-key-2.pem")),
    // Never published by any JWKS: the "signed by somebody else" key.
    ("rogue", include_str!("../../fixtures/keys/jwt-key-rogue.pem")),
    // The identity providers' (IAS tenants, any OIDC issuer): their own
    // keys, never the UAA's, so trusting one never trusts the other.
    ("oidc-1", include_str!("../../fixtures/keys/oidc-key-1.pem")),
    ("oidc-2", include_str!("../../fixtures/keys/oidc-key-2.pem")),
];

/// The external SAML identity provider's RSA key (seed 000's external
/// system): a fixture, so `idprop token --saml-assertion` in one process signs
/// what a running `idprop up` trusts.
const SAML_IDP_KEY: &str = include_str!("../../fixtures/keys/saml-idp-key.pem");

/// Errors of the PKI; they only happen with corrupted fixtures.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("JWT key error: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("TLS configuration error: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    Other(String),
}

/// A certificate authority that can issue leaf certificates.
pub struct CertificateAuthority {
    name: &'static str,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority").finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    fn load(name: &'static str, cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Self { name, cert_pem: cert_pem.to_string(), issuer })
    }

    /// Which of the test CAs this is (`root`, `connector`, `untrusted`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        let p = pem::parse(&self.cert_pem).expect("fixture CA is valid PEM");
        CertificateDer::from(p.into_contents())
    }

    /// Issues a certificate for `params` and `key`.
    pub fn issue(&self, params: &CertificateParams, key: &KeyPair) -> Result<rcgen::Certificate, PkiError> {
        Ok(params.signed_by(key, &self.issuer)?)
    }
}

/// One RSA key the UAA signs tokens with.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public key as published in `/token_keys`.
    pub jwk: Jwk,
    pub private_pem: String,
    /// SubjectPublicKeyInfo PEM, derived once (parsing an RSA key is costly).
    public_pem: String,
    /// Parsed once: jsonwebtoken re-parses (and re-validates) the key on
    /// every signature, which costs more than the signature itself.
    rsa: Arc<aws_lc_rs::signature::RsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 RSA private key.
    pub fn from_pem(kid: &str, pem: &str) -> Result<Self, PkiError> {
        use aws_lc_rs::signature::KeyPair as _;
        use base64::Engine;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let der = ::pem::parse(pem).map_err(|e| PkiError::Other(format!("key {kid}: {e}")))?;
        let rsa = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der.contents())
            .map_err(|e| PkiError::Other(format!("key {kid}: {e}")))?;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let public = rsa.public_key();
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        }))
        .map_err(|e| PkiError::Other(format!("key {kid}: {e}")))?;
        let decoding = DecodingKey::from_jwk(&jwk)?;
        // From the key already parsed: a second parse (rcgen's) validated the
        // whole key again, a millisecond per key at every start.
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(public)
            .map_err(|e| PkiError::Other(format!("key {kid}: {e}")))?;
        let public_pem = ::pem::encode_config(
            &::pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()),
            ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
        );
        Ok(Self {
            kid: kid.to_string(),
            encoding,
            decoding,
            jwk,
            private_pem: pem.to_string(),
            public_pem,
            rsa: Arc::new(rsa),
        })
    }

    /// An RS256 JWT of `header` and `claims` (both JSON texts).
    pub fn sign_jwt(&self, header: &str, claims: &str) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let modulus = self.rsa.public_modulus_len();
        // One buffer, sized for the whole token: header, claims and
        // signature are base64-encoded into it in turn.
        let b64_len = |n: usize| n.div_ceil(3) * 4;
        let mut token = String::with_capacity(b64_len(header.len()) + b64_len(claims.len()) + b64_len(modulus) + 2);
        b64.encode_string(header, &mut token);
        token.push('.');
        b64.encode_string(claims, &mut token);
        let mut sig = vec![0u8; modulus];
        self.rsa
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                token.as_bytes(),
                &mut sig,
            )
            .expect("RS256 signing with a valid key cannot fail");
        token.push('.');
        b64.encode_string(&sig, &mut token);
        token
    }

    /// An RS256 JWT of exactly `claims`, its header naming this key.
    pub fn sign_claims(&self, claims: &serde_json::Map<String, serde_json::Value>) -> String {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        self.sign_jwt(&header.to_string(), &serde_json::Value::Object(claims.clone()).to_string())
    }

    /// The RSA public key as SubjectPublicKeyInfo PEM (what an attacker would
    /// use as an HMAC secret in the HS256 confusion attack).
    pub fn public_pem(&self) -> String {
        self.public_pem.clone()
    }
}

/// The whole test PKI of a stack.
pub struct TestPki {
    root: CertificateAuthority,
    connector: CertificateAuthority,
    other: CertificateAuthority,
    keys: Vec<SigningKey>,
    leaf_key: KeyPair,
    server_configs: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    /// SAML signers made so far, by entity id.
    saml_signers: Mutex<HashMap<String, crate::saml::SamlSigner>>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// The committed JWT keys, parsed once per process: validating an RSA key
/// costs more than the rest of a stack's start together.
fn fixture_keys() -> Result<&'static [SigningKey], PkiError> {
    static KEYS: std::sync::OnceLock<Result<Vec<SigningKey>, String>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        JWT_KEYS
            .iter()
            .map(|(kid, pem)| SigningKey::from_pem(kid, pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| PkiError::Other(e.clone()))
}

/// Installs aws-lc-rs as the process's rustls provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

impl TestPki {
    /// Loads the committed fixtures.
    pub fn load() -> Result<Self, PkiError> {
        install_crypto_provider();
        let keys = fixture_keys()?.to_vec();
        Ok(Self {
            root: CertificateAuthority::load("root", ROOT_CA_PEM, ROOT_CA_KEY)?,
            connector: CertificateAuthority::load("connector", CONNECTOR_CA_PEM, CONNECTOR_CA_KEY)?,
            other: CertificateAuthority::load("untrusted", OTHER_CA_PEM, OTHER_CA_KEY)?,
            keys,
            leaf_key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            server_configs: Mutex::new(HashMap::new()),
            saml_signers: Mutex::new(HashMap::new()),
        })
    }

    /// The TEST ONLY SAML signer named `entity_id`, its certificate issued
    /// by the root CA. [`SamlKey::ExternalIdp`] signs with the committed
    /// fixture key; [`SamlKey::Generated`] with an RSA key made on first use
    /// and kept for this process (a Destination Trust per subaccount).
    pub fn saml_signer(&self, entity_id: &str, key: SamlKey) -> Result<crate::saml::SamlSigner, PkiError> {
        let mut cache = self.saml_signers.lock().expect("saml signers lock");
        if let Some(s) = cache.get(entity_id) {
            return Ok(s.clone());
        }
        let key_pem = match key {
            SamlKey::ExternalIdp => SAML_IDP_KEY.to_string(),
            SamlKey::Generated => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?.serialize_pem()
            }
        };
        let pem_start = key_pem.find("-----BEGIN").unwrap_or(0);
        let pair = KeyPair::from_pem(&key_pem[pem_start..])?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let cn: String = entity_id.chars().take(64).collect();
        params.distinguished_name = dn(&[(DnType::CommonName, &cn), (DnType::OrganizationName, "idprop TEST ONLY")]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(730);
        let cert = self.root.issue(&params, &pair)?;
        let signer = crate::saml::SamlSigner::new(entity_id, &key_pem, &cert.pem())
            .map_err(|e| PkiError::Other(format!("SAML signer {entity_id}: {e}")))?;
        cache.insert(entity_id.to_string(), signer.clone());
        Ok(signer)
    }

    /// The root CA that signs every mock's TLS server certificate.
    pub fn root_ca(&self) -> &CertificateAuthority {
        &self.root
    }

    /// The Cloud Connector's CA for short-lived client certificates.
    pub fn connector_ca(&self) -> &CertificateAuthority {
        &self.connector
    }

    /// A CA nobody trusts: for "signed by the wrong CA" tests.
    pub fn untrusted_ca(&self) -> &CertificateAuthority {
        &self.other
    }

    /// The JWT signing keys published by the UAA (`key-1`, `key-2`).
    pub fn signing_keys(&self) -> &[SigningKey] {
        &self.keys[..2]
    }

    /// A key by `kid`, including the unpublished `rogue` one.
    pub fn signing_key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The JWKS of the published keys.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.signing_keys().iter().map(|k| k.jwk.clone()).collect() }
    }

    /// A rustls server configuration presenting a certificate for `host`
    /// signed by the root CA. Cached per host; client certificates are
    /// requested but optional (signed by the root or connector CA).
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        self.server_config_trusting(host, &[&self.root, &self.connector])
    }

    /// Like [`TestPki::server_config`], accepting client certificates of
    /// `client_cas` only.
    pub fn server_config_trusting(
        &self,
        host: &str,
        client_cas: &[&CertificateAuthority],
    ) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let key = format!("{host}|{}", client_cas.iter().map(|c| c.name).collect::<Vec<_>>().join(","));
        let mut cache = self.server_configs.lock().expect("pki cache poisoned");
        if let Some(cfg) = cache.get(&key) {
            return Ok(cfg.clone());
        }
        let (chain, leaf) = self.server_cert(host)?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in client_cas {
            roots.add(ca.cert_der()).map_err(PkiError::Tls)?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .allow_unauthenticated()
            .build()
            .map_err(|e| PkiError::Other(e.to_string()))?;
        let mut cfg =
            rustls::ServerConfig::builder().with_client_cert_verifier(verifier).with_single_cert(chain, leaf)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        cache.insert(key, cfg.clone());
        Ok(cfg)
    }

    /// A TLS server certificate chain and key for `host` (DNS name or IP).
    pub fn server_cert(&self, host: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let mut params = CertificateParams::new(vec![host.to_string()])?;
        params.distinguished_name = dn(&[(DnType::CommonName, host), (DnType::OrganizationName, "idprop TEST ONLY")]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(365);
        let cert = self.root.issue(&params, &self.leaf_key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        Ok((vec![cert.der().clone()], key))
    }

    /// A client certificate (PEM cert, PEM key) for `subject_cn`, issued by
    /// the root CA: the kind a destination's key store holds.
    pub fn client_cert_pem(&self, subject_cn: &str) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name =
            dn(&[(DnType::CommonName, subject_cn), (DnType::OrganizationName, "idprop TEST ONLY")]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
        let cert = self.root.issue(&params, &key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The subject (RFC 4514) of the root CA: the issuer of every client
    /// certificate [`TestPki::client_cert_pem`] makes (the connector CA
    /// issues principals' certificates, never a client's credential).
    pub fn client_ca_subject(&self) -> String {
        crate::http::cert_info(self.root.cert_der().as_ref()).map(|c| c.subject).unwrap_or_default()
    }

    /// Writes the root CA bundle (root + connector CA) to `path`.
    pub fn write_ca_bundle(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.ca_bundle_pem())
    }

    /// PEM bundle of the root CA: what `SSL_CERT_FILE` points at.
    pub fn ca_bundle_pem(&self) -> String {
        self.root.cert_pem().to_string()
    }
}

/// The subject (RFC 4514) of what [`TestPki::client_cert_pem`] issues for
/// `cn`.
pub fn client_subject(cn: &str) -> String {
    format!("CN={},O=idprop TEST ONLY", crate::rules::dn::escape_value(cn))
}

/// A DN from attributes in RFC 4514 order (most specific first, as people
/// write them); X.509 encodes them the other way round.
fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in parts.iter().rev() {
        dn.push(t.clone(), *v);
    }
    dn
}

/// Which key a SAML signer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamlKey {
    /// The committed fixture of the external identity provider.
    ExternalIdp,
    /// A key generated on first use.
    Generated,
}

/// Regenerates every fixture file under `dir` (`fixtures/`): three CAs, three
/// RSA-2048 JWT keys, the external SAML identity provider's RSA-2048 key. Each file starts with a TEST ONLY banner.
pub fn generate_fixtures(dir: &Path) -> Result<Vec<std::path::PathBuf>, PkiError> {
    install_crypto_provider();
    let io = |e: std::io::Error| PkiError::Other(e.to_string());
    std::fs::create_dir_all(dir.join("pki")).map_err(io)?;
    std::fs::create_dir_all(dir.join("keys")).map_err(io)?;
    let banner = |what: &str| {
        format!(
            "# {TEST_ONLY}: {what} of idprop's mock identity stack.\n\
             # Published on purpose; never trust it outside tests.\n\
             # Regenerate: cargo run -- fixtures regenerate\n"
        )
    };
    let mut written = Vec::new();
    let mut write = |rel: &str, what: &str, body: &str| -> Result<(), PkiError> {
        let path = dir.join(rel);
        std::fs::write(&path, format!("{}{}", banner(what), body)).map_err(io)?;
        written.push(path);
        Ok(())
    };
    for (name, cn) in [
        ("root-ca", "idprop TEST ONLY Root CA"),
        ("connector-ca", "idprop TEST ONLY Cloud Connector CA"),
        ("other-ca", "idprop TEST ONLY Untrusted CA"),
    ] {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(&[(DnType::CommonName, cn), (DnType::OrganizationName, "idprop TEST ONLY")]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = params.self_signed(&key)?;
        write(&format!("pki/{name}.pem"), cn, &cert.pem())?;
        write(&format!("pki/{name}.key.pem"), &format!("private key of {cn}"), &key.serialize_pem())?;
    }
    for kid in ["1", "2", "rogue"] {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        write(&format!("keys/jwt-key-{kid}.pem"), &format!("RSA-2048 JWT signing key {kid}"), &key.serialize_pem())?;
    }
    for k in ["1", "2"] {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
        write(
            &format!("keys/oidc-key-{k}.pem"),
            &format!("RSA-2048 OIDC signing key {k} of the mock identity providers"),
            &key.serialize_pem(),
        )?;
    }
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
    write(
        "keys/saml-idp-key.pem",
        "RSA-2048 SAML signing key of the external identity provider",
        &key.serialize_pem(),
    )?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public PEM derived from the parsed key is the one rcgen gives
    /// (what `/token_keys`' `value` and the binding's `verificationkey`
    /// always carried), for every fixture key.
    #[test]
    fn the_public_pem_is_the_keys_subject_public_key_info() {
        let pki = TestPki::load().unwrap();
        for k in pki.signing_keys() {
            let want = KeyPair::from_pem(&k.private_pem).unwrap().public_key_pem();
            assert_eq!(k.public_pem(), want, "{}", k.kid);
        }
    }
}
