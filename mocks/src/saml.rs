//! SAML 2.0 bearer assertions (RFC 7522): built and signed by the mock
//! Destination service (`OAuth2SAMLBearerAssertion`), by the external
//! identity provider of seed 000 and by `idprop token --saml-assertion`;
//! verified by the mock UAA's saml2-bearer grant.
//!
//! The XML signature is bergshamra's (enveloped, exclusive C14N,
//! RSA-SHA256), verified only against keys configured as trusted, never a
//! key the document brings. What the assertion must state is decided in
//! [`crate::rules::saml_bearer`].

use std::fmt::Write as _;

use base64::Engine;

pub use crate::rules::saml_bearer::AssertionFacts;

const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Errors of building, signing or reading an assertion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the assertion is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the document is not a single SAML 2.0 <Assertion> (RFC 7522 §2.1: \"a single SAML 2.0 Assertion\"): root is {0}")]
    NotAnAssertion(String),
    #[error("the assertion has no <Issuer> (RFC 7522 §3 item 1)")]
    NoIssuer,
    #[error("the issuer {0:?} is not a trusted identity provider of this tenant")]
    UntrustedIssuer(String),
    #[error("the assertion is not signed (RFC 7522 §3 item 9: it MUST be digitally signed)")]
    Unsigned,
    #[error("the signature does not verify with the certificate of {issuer:?}: {reason}")]
    BadSignature { issuer: String, reason: String },
    #[error("the assertion is not base64url (RFC 7522 §2.1) or base64: {0}")]
    Encoding(String),
    #[error("signing key or certificate: {0}")]
    Key(String),
}

/// An identity provider that signs assertions: its entity id, its TEST ONLY
/// RSA key and the certificate its partners trust.
#[derive(Clone)]
pub struct SamlSigner {
    entity_id: String,
    key_pem: String,
    certificate_pem: String,
}

impl std::fmt::Debug for SamlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlSigner").field("entity_id", &self.entity_id).finish_non_exhaustive()
    }
}

/// An identity provider whose assertions are accepted: the issuer it names
/// and the certificate whose key must have signed them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustedSamlIdp {
    /// The `<Issuer>` of its assertions.
    pub entity_id: String,
    /// Its signing certificate, PEM.
    pub certificate: String,
    /// The `origin` of the users it authenticates.
    #[serde(default = "default_origin")]
    pub origin: String,
    /// Subdomains of the tenants that trust it; every tenant when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

fn default_origin() -> String {
    "sap.default".into()
}

/// One assertion to sign. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assertion {
    /// `<Issuer>`; the signer's entity id when absent.
    pub issuer: Option<String>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub name_qualifier: Option<String>,
    pub audiences: Vec<String>,
    pub recipient: String,
    pub issue_instant: i64,
    pub not_on_or_after: i64,
    pub authn_context_class_ref: Option<String>,
    pub attributes: Vec<(String, Vec<String>)>,
}

impl Assertion {
    /// A bearer assertion for `name_id`, for the authorization server
    /// `audience` whose token endpoint is `recipient`, valid from now for
    /// `validity_secs` (what RFC 7522 §3 asks of it, nothing more).
    pub fn bearer(name_id: &str, audience: &str, recipient: &str, validity_secs: i64) -> Self {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Self {
            name_id: name_id.to_string(),
            audiences: vec![audience.to_string()],
            recipient: recipient.to_string(),
            issue_instant: now,
            not_on_or_after: now + validity_secs,
            ..Default::default()
        }
    }
}

impl SamlSigner {
    /// A signer from a PKCS#8 RSA key and its certificate (PEM; text around
    /// the PEM blocks, such as the fixtures' TEST ONLY banner, is ignored).
    pub fn new(entity_id: &str, key_pem: &str, certificate_pem: &str) -> Result<Self, SamlError> {
        let key_pem = pem_block(key_pem, "PRIVATE KEY").ok_or_else(|| SamlError::Key("no PRIVATE KEY block".into()))?;
        let certificate_pem =
            pem_block(certificate_pem, "CERTIFICATE").ok_or_else(|| SamlError::Key("no CERTIFICATE block".into()))?;
        bergshamra::keys::loader::load_rsa_private_pem(key_pem.as_bytes())
            .map_err(|e| SamlError::Key(e.to_string()))?;
        Ok(Self { entity_id: entity_id.to_string(), key_pem, certificate_pem })
    }

    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// The certificate partners configure as trusted (PEM).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// This signer as a partner trusts it.
    pub fn trusted(&self, origin: &str) -> TrustedSamlIdp {
        TrustedSamlIdp {
            entity_id: self.entity_id.clone(),
            certificate: self.certificate_pem.clone(),
            origin: origin.to_string(),
            tenants: Vec::new(),
        }
    }

    /// The signed assertion XML; with `include_certificate` the signing
    /// certificate travels in `<KeyInfo>` (c69ea6a,
    /// `includeSigningCertificateInSAMLAssertion`).
    pub fn sign(&self, a: &Assertion, include_certificate: bool) -> Result<String, SamlError> {
        let id = format!("_{:032x}", rand::random::<u128>());
        let t = |s: i64| xml_time(s);
        let mut x = String::new();
        let _ = write!(
            x,
            r#"<saml2:Assertion xmlns:saml2="{SAML_NS}" ID="{id}" IssueInstant="{}" Version="2.0">"#,
            t(a.issue_instant)
        );
        let _ = write!(x, "<saml2:Issuer>{}</saml2:Issuer>", esc(a.issuer.as_deref().unwrap_or(&self.entity_id)));
        let key_info = if include_certificate {
            let b64: String = self.certificate_pem.lines().filter(|l| !l.starts_with("-----")).collect();
            format!(
                "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            )
        } else {
            String::new()
        };
        let _ = write!(
            x,
            r##"<ds:Signature xmlns:ds="{DSIG_NS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>{key_info}</ds:Signature>"##
        );
        x.push_str("<saml2:Subject><saml2:NameID");
        if let Some(f) = &a.name_id_format {
            let _ = write!(x, r#" Format="{}""#, esc(f));
        }
        if let Some(q) = &a.name_qualifier {
            let _ = write!(x, r#" NameQualifier="{}""#, esc(q));
        }
        let _ = write!(
            x,
            r#">{}</saml2:NameID><saml2:SubjectConfirmation Method="{}"><saml2:SubjectConfirmationData NotOnOrAfter="{}" Recipient="{}"/></saml2:SubjectConfirmation></saml2:Subject>"#,
            esc(&a.name_id),
            crate::rules::saml_bearer::BEARER_METHOD,
            t(a.not_on_or_after),
            esc(&a.recipient)
        );
        let _ = write!(
            x,
            r#"<saml2:Conditions NotBefore="{}" NotOnOrAfter="{}"><saml2:AudienceRestriction>"#,
            t(a.issue_instant - 60),
            t(a.not_on_or_after)
        );
        for aud in &a.audiences {
            let _ = write!(x, "<saml2:Audience>{}</saml2:Audience>", esc(aud));
        }
        x.push_str("</saml2:AudienceRestriction></saml2:Conditions>");
        let _ = write!(x, r#"<saml2:AuthnStatement AuthnInstant="{}" SessionIndex="{id}">"#, t(a.issue_instant));
        let class =
            a.authn_context_class_ref.as_deref().unwrap_or("urn:oasis:names:tc:SAML:2.0:ac:classes:PreviousSession");
        let _ = write!(
            x,
            "<saml2:AuthnContext><saml2:AuthnContextClassRef>{}</saml2:AuthnContextClassRef></saml2:AuthnContext></saml2:AuthnStatement>",
            esc(class)
        );
        if !a.attributes.is_empty() {
            x.push_str("<saml2:AttributeStatement>");
            for (name, values) in &a.attributes {
                let _ = write!(x, r#"<saml2:Attribute Name="{}">"#, esc(name));
                for v in values {
                    let _ = write!(x, "<saml2:AttributeValue>{}</saml2:AttributeValue>", esc(v));
                }
                x.push_str("</saml2:Attribute>");
            }
            x.push_str("</saml2:AttributeStatement>");
        }
        x.push_str("</saml2:Assertion>");
        let key = bergshamra::keys::loader::load_rsa_private_pem(self.key_pem.as_bytes())
            .map_err(|e| SamlError::Key(e.to_string()))?;
        let mut km = bergshamra::KeysManager::new();
        km.add_key(key);
        let ctx = bergshamra::DsigContext::new(km);
        bergshamra::sign(&ctx, &x).map_err(|e| SamlError::Key(format!("signing failed: {e}")))
    }
}

/// The `assertion` parameter: base64url without padding (RFC 7522 §2.1).
pub fn encode(xml: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(xml.as_bytes())
}

/// Reads an `assertion` parameter: base64url (RFC 7522 §2.1), with or without
/// padding; plain base64 is accepted too (clients differ).
pub fn decode(param: &str) -> Result<String, SamlError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let p = param.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(p))
        .or_else(|_| STANDARD.decode(p))
        .map_err(|e| SamlError::Encoding(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| SamlError::Encoding(format!("not UTF-8: {e}")))
}

/// Verifies `xml` as a single signed SAML 2.0 assertion of one of `trusted`
/// and returns what it states. The signature must be the assertion's own
/// (a direct child, its reference the assertion's `ID`), and it must verify
/// with the certificate configured for the assertion's issuer: a key inside
/// the document is never used. DTDs are refused (no entity expansion).
pub fn verify(xml: &str, trusted: &[TrustedSamlIdp]) -> Result<(AssertionFacts, TrustedSamlIdp), SamlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| SamlError::Malformed(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(SAML_NS) || root.tag_name().name() != "Assertion" {
        return Err(SamlError::NotAnAssertion(format!("{:?}", root.tag_name())));
    }
    let issuer = child(root, SAML_NS, "Issuer").and_then(|n| n.text()).map(str::trim).unwrap_or_default();
    if issuer.is_empty() {
        return Err(SamlError::NoIssuer);
    }
    let idp =
        trusted.iter().find(|t| t.entity_id == issuer).ok_or_else(|| SamlError::UntrustedIssuer(issuer.to_string()))?;
    let signatures: Vec<_> = root.children().filter(|n| is(*n, DSIG_NS, "Signature")).collect();
    let id = root.attribute("ID").unwrap_or_default().to_string();
    let [_signature] = signatures.as_slice() else {
        return Err(SamlError::Unsigned);
    };
    let bad = |reason: String| SamlError::BadSignature { issuer: issuer.to_string(), reason };
    let cert =
        pem_block(&idp.certificate, "CERTIFICATE").ok_or_else(|| bad("the trusted certificate is not PEM".into()))?;
    let key = bergshamra::keys::loader::load_x509_cert_pem(cert.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let mut km = bergshamra::KeysManager::new();
    km.add_key(key);
    let ctx = bergshamra::DsigContext::new(km);
    match bergshamra::verify(&ctx, xml).map_err(|e| bad(e.to_string()))? {
        bergshamra::VerifyResult::Valid { references, .. } => {
            let covers_root = !id.is_empty() && references.iter().any(|r| r.uri == format!("#{id}"));
            if !covers_root || references.iter().any(|r| !r.digest_verified) {
                return Err(bad("the signature does not cover this assertion".into()));
            }
        }
        bergshamra::VerifyResult::Invalid { reason } => return Err(bad(reason)),
    }
    Ok((facts(root, id, issuer), idp.clone()))
}

/// What the (verified) assertion element states.
fn facts(root: roxmltree::Node<'_, '_>, id: String, issuer: &str) -> AssertionFacts {
    let subject = child(root, SAML_NS, "Subject");
    let name_id = subject.and_then(|s| child(s, SAML_NS, "NameID"));
    let conditions = child(root, SAML_NS, "Conditions");
    let time_attr = |n: Option<roxmltree::Node<'_, '_>>, a: &str| n.and_then(|n| n.attribute(a)).and_then(parse_time);
    let bearer_confirmations = subject
        .into_iter()
        .flat_map(|s| s.children().filter(|n| is(*n, SAML_NS, "SubjectConfirmation")))
        .filter(|c| c.attribute("Method") == Some(crate::rules::saml_bearer::BEARER_METHOD))
        .map(|c| {
            let data = child(c, SAML_NS, "SubjectConfirmationData");
            (data.and_then(|d| d.attribute("Recipient")).map(str::to_string), time_attr(data, "NotOnOrAfter"))
        })
        .collect();
    let audiences = conditions
        .into_iter()
        .flat_map(|c| c.children().filter(|n| is(*n, SAML_NS, "AudienceRestriction")))
        .flat_map(|r| r.children().filter(|n| is(*n, SAML_NS, "Audience")))
        .filter_map(|a| a.text().map(|t| t.trim().to_string()))
        .collect();
    let attributes = root
        .children()
        .filter(|n| is(*n, SAML_NS, "AttributeStatement"))
        .flat_map(|s| s.children().filter(|n| is(*n, SAML_NS, "Attribute")))
        .map(|a| {
            let values = a
                .children()
                .filter(|n| is(*n, SAML_NS, "AttributeValue"))
                .map(|v| v.text().unwrap_or_default().to_string())
                .collect();
            (a.attribute("Name").unwrap_or_default().to_string(), values)
        })
        .collect();
    AssertionFacts {
        id,
        issuer: issuer.to_string(),
        name_id: name_id.and_then(|n| n.text()).map(|t| t.trim().to_string()),
        name_id_format: name_id.and_then(|n| n.attribute("Format")).map(str::to_string),
        audiences,
        bearer_confirmations,
        not_before: time_attr(conditions, "NotBefore"),
        not_on_or_after: time_attr(conditions, "NotOnOrAfter"),
        attributes,
    }
}

fn is(n: roxmltree::Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| is(*c, ns, name))
}

/// `xs:dateTime` in UTC, seconds.
fn xml_time(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// The first PEM block labelled `label` in `text`, re-armoured.
fn pem_block(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(format!("{}\n", &text[start..stop]))
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}
