//! Minting JWTs the way XSUAA shapes them, and deliberately broken ones.
//!
//! The UAA's endpoints, `idprop token` and tests all mint through
//! [`TokenFactory`], so a token minted by hand is indistinguishable from one
//! the UAA issued.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

use crate::identity::{OAuthClient, Tenant, User};
use crate::pki::{SigningKey, TestPki};

/// Ways a token can be wrong, for negative tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Forgery {
    /// `alg: none` and an empty signature.
    AlgNone,
    /// `alg: HS256`, HMAC keyed with the RSA public key (PEM) of the real kid.
    Hs256WithPublicKey,
    /// Signed by an unpublished key but claiming the real `kid`.
    WrongKey,
    /// Signed properly but with a `kid` nobody published.
    UnknownKid,
    /// The signature part removed (`header.payload.`).
    StrippedSignature,
    /// `exp` an hour ago.
    Expired,
    /// `nbf` an hour ahead.
    NotYetValid,
    /// `iat` a day ahead.
    IssuedInFuture,
    /// No `user_name`, `email`, `mail`, `user_uuid`, `sub`, `client_id`, `cid`, `azp`.
    MissingPrincipalClaims,
    /// `jku` pointing at a host that is not the issuer's.
    ForeignJku,
    /// Properly signed, but 1 MiB large.
    Huge,
    /// Segments that are not base64url.
    InvalidBase64,
    /// Properly signed claims with `iss` twice (JSON duplicate keys).
    DuplicateKeys,
    /// Properly signed claims nested 10,000 levels deep.
    DeepNesting,
}

impl Forgery {
    pub const ALL: [Forgery; 14] = [
        Forgery::AlgNone,
        Forgery::Hs256WithPublicKey,
        Forgery::WrongKey,
        Forgery::UnknownKid,
        Forgery::StrippedSignature,
        Forgery::Expired,
        Forgery::NotYetValid,
        Forgery::IssuedInFuture,
        Forgery::MissingPrincipalClaims,
        Forgery::ForeignJku,
        Forgery::Huge,
        Forgery::InvalidBase64,
        Forgery::DuplicateKeys,
        Forgery::DeepNesting,
    ];
}

/// Mints tokens for one UAA domain with the PKI's keys.
#[derive(Clone, Debug)]
pub struct TokenFactory {
    pki: Arc<TestPki>,
    domain: String,
    active_kid: Arc<std::sync::RwLock<String>>,
}

impl TokenFactory {
    pub fn new(pki: Arc<TestPki>, domain: impl Into<String>) -> Self {
        Self { pki, domain: domain.into(), active_kid: Arc::new(std::sync::RwLock::new("key-1".into())) }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `https://<tenant>.<domain>/oauth/token`, XSUAA's issuer shape.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("https://{tenant}.{}/oauth/token", self.domain)
    }

    /// `https://<tenant>.<domain>/token_keys`.
    pub fn jku(&self, tenant: &str) -> String {
        format!("https://{tenant}.{}/token_keys", self.domain)
    }

    /// The `kid` new tokens are signed with.
    pub fn active_kid(&self) -> String {
        self.active_kid.read().expect("kid lock").clone()
    }

    /// Rotates: new tokens are signed with `kid` (both keys stay published).
    pub fn set_active_kid(&self, kid: &str) -> Result<(), String> {
        if self.pki.signing_keys().iter().all(|k| k.kid != kid) {
            return Err(format!("no published signing key with kid {kid:?}"));
        }
        *self.active_kid.write().expect("kid lock") = kid.to_string();
        Ok(())
    }

    fn key(&self, kid: &str) -> &SigningKey {
        self.pki.signing_key(kid).unwrap_or(&self.pki.signing_keys()[0])
    }

    /// Claims common to every token of `tenant` issued to `client_id`.
    fn base_claims(&self, tenant: &Tenant, client_id: &str, grant_type: &str, validity: u64) -> Map<String, Value> {
        let now = unix_now();
        let mut c = Map::new();
        c.insert("jti".into(), json!(random_hex(16)));
        c.insert("ext_attr".into(), json!({"enhancer": "XSUAA", "subaccountid": tenant.zid, "zdn": tenant.subdomain}));
        c.insert("cid".into(), json!(client_id));
        c.insert("client_id".into(), json!(client_id));
        c.insert("azp".into(), json!(client_id));
        c.insert("grant_type".into(), json!(grant_type));
        c.insert("zid".into(), json!(tenant.zid));
        c.insert("iss".into(), json!(self.issuer(&tenant.subdomain)));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now.saturating_add(validity)));
        c.insert("rev_sig".into(), json!(random_hex(4)));
        c
    }

    /// A client-credentials token, as XSUAA issues it.
    pub fn client_token(&self, tenant: &Tenant, client: &OAuthClient, validity: u64) -> TokenBuilder {
        let mut c = self.base_claims(tenant, &client.client_id, "client_credentials", validity);
        c.insert("sub".into(), json!(client.client_id));
        c.insert("authorities".into(), json!(client.authorities));
        c.insert("scope".into(), json!(client.authorities));
        c.insert("aud".into(), json!(audiences(&client.client_id, &client.authorities)));
        self.builder(&tenant.subdomain, c)
    }

    /// A user token, as XSUAA issues it to `client_id` for `user`.
    pub fn user_token(
        &self,
        tenant: &Tenant,
        user: &User,
        client_id: &str,
        grant_type: &str,
        validity: u64,
    ) -> TokenBuilder {
        let mut c = self.base_claims(tenant, client_id, grant_type, validity);
        let scopes = user.scopes.clone();
        c.insert("sub".into(), json!(user.user_id()));
        c.insert("user_id".into(), json!(user.user_id()));
        c.insert("user_name".into(), json!(user.user_name));
        c.insert("origin".into(), json!(user.origin));
        c.insert("user_uuid".into(), json!(user.user_id()));
        if let Some(e) = &user.email {
            c.insert("email".into(), json!(e));
        }
        if let Some(g) = &user.given_name {
            c.insert("given_name".into(), json!(g));
        }
        if let Some(f) = &user.family_name {
            c.insert("family_name".into(), json!(f));
        }
        c.insert("auth_time".into(), c["iat"].clone());
        c.insert("scope".into(), json!(scopes));
        c.insert("aud".into(), json!(audiences(client_id, &scopes)));
        c.insert("xs.user.attributes".into(), json!({}));
        for (k, v) in &user.claims {
            c.insert(k.clone(), v.clone());
        }
        self.builder(&tenant.subdomain, c)
    }

    /// A builder with arbitrary claims for `tenant` (signed with the active key).
    pub fn builder(&self, tenant: &str, claims: Map<String, Value>) -> TokenBuilder {
        TokenBuilder { factory: self.clone(), kid: self.active_kid(), jku: Some(self.jku(tenant)), claims }
    }
}

/// A token on its way to being signed.
#[derive(Clone, Debug)]
pub struct TokenBuilder {
    factory: TokenFactory,
    kid: String,
    jku: Option<String>,
    claims: Map<String, Value>,
}

impl TokenBuilder {
    /// Sets or overrides a claim.
    pub fn claim(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(key.into(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without(mut self, key: &str) -> Self {
        self.claims.remove(key);
        self
    }

    /// Signs with another key id (`key-1`, `key-2`, or `rogue`).
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// `exp` = now + `secs` (negative: already expired).
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.claims.insert("exp".into(), json!(unix_now() as i64 + secs));
        self
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    fn header(&self) -> Header {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.kid.clone());
        h.jku = self.jku.clone();
        h
    }

    /// Signs with RS256.
    pub fn sign(&self) -> String {
        // Serialised by reference: no copy of the claims per token.
        self.sign_raw_as(&self.kid, &serde_json::to_string(&self.claims).expect("claims serialise"))
    }

    /// Produces the token broken in the way `forgery` says.
    pub fn forge(&self, forgery: Forgery) -> String {
        let now = unix_now() as i64;
        match forgery {
            Forgery::AlgNone => {
                let header = json!({"alg": "none", "typ": "JWT", "kid": self.kid});
                format!("{}.{}.", b64_json(&header), b64_json(&Value::Object(self.claims.clone())))
            }
            Forgery::Hs256WithPublicKey => {
                let public = self.factory.key(&self.kid).public_pem();
                let mut h = self.header();
                h.alg = Algorithm::HS256;
                jsonwebtoken::encode(&h, &self.claims, &EncodingKey::from_secret(public.as_bytes()))
                    .expect("HS256 signing cannot fail")
            }
            Forgery::WrongKey => self.sign_raw_as("rogue", &Value::Object(self.claims.clone()).to_string()),
            Forgery::UnknownKid => {
                self.clone().kid("key-unknown").sign_raw_as("key-1", &Value::Object(self.claims.clone()).to_string())
            }
            Forgery::StrippedSignature => {
                let t = self.sign();
                let cut = t.rfind('.').expect("JWT has dots");
                format!("{}.", &t[..cut])
            }
            Forgery::Expired => self.clone().claim("exp", now - 3600).claim("iat", now - 7200).sign(),
            Forgery::NotYetValid => self.clone().claim("nbf", now + 3600).sign(),
            Forgery::IssuedInFuture => self.clone().claim("iat", now + 86400).claim("exp", now + 90000).sign(),
            Forgery::MissingPrincipalClaims => {
                let mut b = self.clone();
                for k in ["user_name", "email", "mail", "user_uuid", "sub", "client_id", "cid", "azp"] {
                    b.claims.remove(k);
                }
                b.sign()
            }
            Forgery::ForeignJku => {
                let mut b = self.clone();
                b.jku = Some("https://attacker.evil.test/token_keys".into());
                b.sign()
            }
            Forgery::Huge => self.clone().claim("padding", "x".repeat(1024 * 1024)).sign(),
            Forgery::InvalidBase64 => {
                let t = self.sign();
                let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
                parts[1] = format!("!!{}**", &parts[1][2..]);
                parts.join(".")
            }
            Forgery::DuplicateKeys => {
                // serde cannot write duplicate keys: splice a second `iss`
                // in front (a parser where the first one wins sees it).
                let body = Value::Object(self.claims.clone()).to_string();
                let body = format!("{{\"iss\":\"https://attacker.evil.test/oauth/token\",{}", &body[1..]);
                self.sign_raw(&body)
            }
            Forgery::DeepNesting => {
                let body = Value::Object(self.claims.clone()).to_string();
                let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
                self.sign_raw(&format!("{{\"deep\":{deep},{}", &body[1..]))
            }
        }
    }

    /// Signs an arbitrary payload text (RS256, real key).
    fn sign_raw(&self, payload: &str) -> String {
        self.sign_raw_as(&self.kid, payload)
    }

    /// Signs `payload` with the key `real_kid`, the header naming `self.kid`.
    fn sign_raw_as(&self, real_kid: &str, payload: &str) -> String {
        let header = serde_json::to_string(&self.header()).expect("header serialises");
        self.factory.key(real_kid).sign_jwt(&header, payload)
    }
}

/// XSUAA's `aud`: the client, plus each scope's application prefix.
fn audiences(client_id: &str, scopes: &[String]) -> Vec<String> {
    let mut aud = vec![client_id.to_string()];
    for s in scopes {
        if let Some((prefix, _)) = s.split_once('.') {
            if !prefix.is_empty() && !aud.iter().any(|a| a == prefix) {
                aud.push(prefix.to_string());
            }
        }
    }
    aud
}

fn b64_json(v: &Value) -> String {
    B64.encode(v.to_string())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    // One allocation: a `format!` per byte cost more than the random bytes
    // on the token endpoint (a `jti` and a `rev_sig` per token).
    let mut out = String::with_capacity(2 * n);
    for x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0xf)]));
    }
    out
}

/// Reads a JWT's claims without verifying it (for display and routing only).
pub use crate::rules::token_validation::peek_claims;

#[cfg(test)]
mod tests {
    use super::*;

    /// `jti` and `rev_sig` are lowercase hex of fresh random bytes: two
    /// characters a byte, every nibble value reachable, no two alike.
    #[test]
    fn random_hex_is_lowercase_hex_of_fresh_bytes() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_ne!(a, random_hex(16));
        let seen: std::collections::HashSet<char> =
            (0..64).flat_map(|_| random_hex(16).chars().collect::<Vec<_>>()).collect();
        assert_eq!(seen.len(), 16, "every hex digit appears in 4 KiB of output: {seen:?}");
        assert_eq!(random_hex(0), "");
    }
}
