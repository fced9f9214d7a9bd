//! SAML 2.0 bearer assertions signed and verified: what is signed is what
//! is read, and nothing else verifies (tampering, another key naming the
//! same issuer, an untrusted issuer, no signature, signature wrapping, DTDs).

use idprop_mocks::pki::{SamlKey, TestPki};
use idprop_mocks::saml::{decode, encode, verify, Assertion, SamlError, SamlSigner};

fn assertion() -> Assertion {
    Assertion {
        name_id: "alice".into(),
        audiences: vec!["https://mytenant.example.test".into()],
        recipient: "https://mytenant.example.test/oauth/token".into(),
        issue_instant: 1_800_000_000,
        not_on_or_after: 1_800_000_300,
        attributes: vec![("email".into(), vec!["alice@example.test".into()])],
        ..Default::default()
    }
}

#[test]
fn a_signed_assertion_verifies_and_states_what_was_signed() {
    let pki = TestPki::load().unwrap();
    let idp = pki.saml_signer("https://idp.example.test", SamlKey::ExternalIdp).unwrap();
    for include_certificate in [false, true] {
        let xml = idp.sign(&assertion(), include_certificate).unwrap();
        let xml = decode(&encode(&xml)).unwrap();
        let (f, by) = verify(&xml, &[idp.trusted("external")]).unwrap();
        assert_eq!(by.origin, "external");
        assert_eq!(f.issuer, "https://idp.example.test");
        assert_eq!(f.name_id.as_deref(), Some("alice"));
        assert_eq!(f.audiences, vec!["https://mytenant.example.test".to_string()]);
        assert_eq!(
            f.bearer_confirmations,
            vec![(Some("https://mytenant.example.test/oauth/token".into()), Some(1_800_000_300))]
        );
        assert_eq!(f.attribute("email"), Some("alice@example.test"));
        assert_eq!(f.not_on_or_after, Some(1_800_000_300));
    }
}

#[test]
fn tampered_foreign_and_unsigned_assertions_are_refused() {
    let pki = TestPki::load().unwrap();
    let idp = pki.saml_signer("https://idp.example.test", SamlKey::ExternalIdp).unwrap();
    let trusted = [idp.trusted("external")];
    let xml = idp.sign(&assertion(), true).unwrap();
    // The subject changed after signing.
    let tampered = xml.replace(">alice<", ">mallory<");
    assert!(matches!(verify(&tampered, &trusted), Err(SamlError::BadSignature { .. })), "{tampered}");
    // Another key naming the same issuer, its own certificate inside:
    // only the configured certificate counts.
    let rogue_key = pki.signing_key("rogue").unwrap().private_pem.clone();
    let generated = pki.saml_signer("rogue-generated", SamlKey::Generated).unwrap();
    let rogue = SamlSigner::new("https://idp.example.test", &rogue_key, generated.certificate_pem()).unwrap();
    let forged = rogue.sign(&assertion(), true).unwrap();
    assert!(matches!(verify(&forged, &trusted), Err(SamlError::BadSignature { .. })));
    // An issuer nobody trusts.
    assert!(matches!(
        verify(&generated.sign(&assertion(), false).unwrap(), &trusted),
        Err(SamlError::UntrustedIssuer(_))
    ));
    // No signature at all.
    let start = xml.find("<ds:Signature").unwrap();
    let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(verify(&unsigned, &trusted).unwrap_err(), SamlError::Unsigned);
    // Not an assertion; a DTD; not XML.
    assert!(matches!(verify("<a/>", &trusted), Err(SamlError::NotAnAssertion(_))));
    let dtd = format!("<!DOCTYPE x [<!ENTITY e \"alice\">]>{xml}");
    assert!(matches!(verify(&dtd, &trusted), Err(SamlError::Malformed(_))));
    assert!(matches!(decode("%%%"), Err(SamlError::Encoding(_))));
}

/// A signed assertion wrapped inside another one (signature wrapping):
/// the outer assertion, which is what would be read, is not covered.
#[test]
fn a_wrapped_signature_does_not_vouch_for_the_outer_assertion() {
    let pki = TestPki::load().unwrap();
    let idp = pki.saml_signer("https://idp.example.test", SamlKey::ExternalIdp).unwrap();
    let xml = idp.sign(&assertion(), false).unwrap();
    let sig_start = xml.find("<ds:Signature").unwrap();
    let sig_end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &xml[sig_start..sig_end];
    let evil = format!(
        r#"<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0"><saml2:Issuer>https://idp.example.test</saml2:Issuer>{signature}<saml2:Subject><saml2:NameID>mallory</saml2:NameID></saml2:Subject><saml2:Advice>{}</saml2:Advice></saml2:Assertion>"#,
        xml.replace(signature, "")
    );
    assert!(verify(&evil, &[idp.trusted("external")]).is_err());
}

/// Interoperability with Debian's `xmlsec1` (libxmlsec1, the reference
/// XML-DSig implementation): what idprop signs, xmlsec1 verifies with the
/// exported certificate; what xmlsec1 signs, idprop verifies. Skipped with
/// a message where `xmlsec1` is not installed (`.ci/run` installs it).
#[test]
fn signatures_interoperate_with_xmlsec1() {
    use std::process::Command;
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must install xmlsec1 (.ci/run does)");
        eprintln!("SKIPPED: xmlsec1 is not installed (apt-get install xmlsec1)");
        return;
    }
    let pki = TestPki::load().unwrap();
    let idp = pki.saml_signer("https://idp.example.test", SamlKey::ExternalIdp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, idp.certificate_pem()).unwrap();
    let xmlsec = |args: &[&str], file: &std::path::Path| {
        let out = Command::new("xmlsec1")
            .args(args)
            .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    // idprop signs, xmlsec1 verifies; a tampered copy fails there too.
    let signed = dir.path().join("signed.xml");
    let xml = idp.sign(&assertion(), false).unwrap();
    std::fs::write(&signed, &xml).unwrap();
    let (ok, _, err) = xmlsec(&["--verify", "--pubkey-cert-pem", cert.to_str().unwrap()], &signed);
    assert!(ok, "xmlsec1 refused idprop's signature: {err}");
    std::fs::write(&signed, xml.replace(">alice<", ">mallory<")).unwrap();
    let (ok, _, _) = xmlsec(&["--verify", "--pubkey-cert-pem", cert.to_str().unwrap()], &signed);
    assert!(!ok, "xmlsec1 accepted a tampered assertion");

    // xmlsec1 signs a template (the fixture key), idprop verifies.
    let unsigned = xml.replace(
        &xml[xml.find("<ds:DigestValue>").unwrap()..xml.find("</ds:DigestValue>").unwrap()],
        "<ds:DigestValue>",
    );
    let unsigned = unsigned.replace(
        &unsigned[unsigned.find("<ds:SignatureValue>").unwrap()..unsigned.find("</ds:SignatureValue>").unwrap()],
        "<ds:SignatureValue>",
    );
    let template = dir.path().join("template.xml");
    std::fs::write(&template, &unsigned).unwrap();
    let key = dir.path().join("key.pem");
    let fixture = include_str!("../../fixtures/keys/saml-idp-key.pem");
    std::fs::write(&key, &fixture[fixture.find("-----BEGIN").unwrap()..]).unwrap();
    let (ok, by_xmlsec, err) = xmlsec(&["--sign", "--privkey-pem", key.to_str().unwrap()], &template);
    assert!(ok, "xmlsec1 could not sign: {err}");
    let (facts, _) = verify(&by_xmlsec, &[idp.trusted("external")]).expect("idprop verifies xmlsec1's signature");
    assert_eq!(facts.name_id.as_deref(), Some("alice"));
}
