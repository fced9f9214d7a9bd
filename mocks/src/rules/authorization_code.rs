//! The authorization code grant of a browser login (RFC 6749 §4.1) with
//! PKCE (RFC 7636): where the authorization server may send the browser
//! back, and whether a code may be redeemed.
//!
//! Used by the mock UAA (`/oauth/authorize`, as the application router's
//! login uses it) and the mock IAS tenants (`/oauth2/authorize`; 9379444
//! lets a client require `authorization_code_pkce_s256`).

use base64::Engine as _;

/// How a client must use PKCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkcePolicy {
    /// A challenge is optional; `S256` and `plain` are understood (RFC 7636
    /// §4.2 defines both; XSUAA takes either).
    Optional,
    /// A challenge with method `S256` is required: an IAS client with the
    /// grant type `authorization_code_pkce_s256` (9379444).
    RequiredS256,
}

/// A code challenge as the authorization request sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    S256(String),
    Plain(String),
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("code_challenge_method {0:?} is not supported (RFC 7636 §4.2: S256 or plain)")]
    UnknownMethod(String),
    #[error("this client requires PKCE with code_challenge_method=S256 (authorization_code_pkce_s256)")]
    PkceRequired,
    #[error("code_challenge must be 43 to 128 characters of [A-Z a-z 0-9 - . _ ~] (RFC 7636 §4.2)")]
    BadChallenge,
}

/// `AC-1`: the challenge of an authorization request (RFC 7636 §4.3: the
/// method defaults to `plain` when absent), under `policy`.
pub fn challenge(
    code_challenge: Option<&str>,
    method: Option<&str>,
    policy: PkcePolicy,
) -> Result<Option<Challenge>, RequestError> {
    let Some(c) = code_challenge else {
        return match policy {
            PkcePolicy::Optional => Ok(None),
            PkcePolicy::RequiredS256 => Err(RequestError::PkceRequired),
        };
    };
    if !is_pkce_string(c) {
        return Err(RequestError::BadChallenge);
    }
    let challenge = match method.unwrap_or("plain") {
        "S256" => Challenge::S256(c.to_string()),
        "plain" => Challenge::Plain(c.to_string()),
        other => return Err(RequestError::UnknownMethod(other.to_string())),
    };
    match (policy, &challenge) {
        (PkcePolicy::RequiredS256, Challenge::Plain(_)) => Err(RequestError::PkceRequired),
        _ => Ok(Some(challenge)),
    }
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, and §4.2 gives the
/// challenge the same alphabet.
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// What the authorization server remembered with a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued<'a> {
    pub client_id: &'a str,
    /// The `redirect_uri` of the authorization request, if it sent one.
    pub redirect_uri: Option<&'a str>,
    pub challenge: Option<&'a Challenge>,
    /// Unix seconds after which the code is dead.
    pub expires: i64,
}

/// What the token request brings to redeem a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redemption<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub now: i64,
}

/// Why a code is not redeemed: every case is `invalid_grant` (RFC 6749
/// §5.2, RFC 7636 §4.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    #[error("the code has expired (RFC 6749 §4.1.2)")]
    Expired,
    #[error("the code was issued to another client (RFC 6749 §4.1.3)")]
    OtherClient,
    #[error("redirect_uri differs from the authorization request's (RFC 6749 §4.1.3)")]
    RedirectMismatch,
    #[error("code_verifier is missing; the authorization request sent a code_challenge (RFC 7636 §4.5)")]
    VerifierMissing,
    #[error("code_verifier does not match the code_challenge (RFC 7636 §4.6)")]
    VerifierMismatch,
    #[error("code_verifier sent for a code issued without code_challenge")]
    UnexpectedVerifier,
}

/// Minimum lifetime a code is given, seconds: RFC 6749 §4.1.2 recommends at
/// most 10 minutes.
pub const CODE_LIFETIME: i64 = 300;

/// `AC-2`: may `r` redeem the code `issued`? (Single use is the store's:
/// a code is removed when first presented, RFC 6749 §4.1.2 "MUST NOT use
/// the authorization code more than once".)
pub fn redeem(issued: &Issued<'_>, r: &Redemption<'_>) -> Result<(), RedeemError> {
    if r.now > issued.expires {
        return Err(RedeemError::Expired);
    }
    if issued.client_id != r.client_id {
        return Err(RedeemError::OtherClient);
    }
    // §4.1.3: "ensure that the redirect_uri parameter is present if the
    // redirect_uri parameter was included in the initial authorization
    // request … and if included ensure that their values are identical".
    if let Some(sent) = issued.redirect_uri {
        if r.redirect_uri != Some(sent) {
            return Err(RedeemError::RedirectMismatch);
        }
    }
    match (issued.challenge, r.code_verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(RedeemError::UnexpectedVerifier),
        (Some(_), None) => Err(RedeemError::VerifierMissing),
        (Some(c), Some(v)) => {
            let ok = is_pkce_string(v)
                && match c {
                    Challenge::S256(c) => s256(v) == *c,
                    Challenge::Plain(c) => v == c,
                };
            if ok {
                Ok(())
            } else {
                Err(RedeemError::VerifierMismatch)
            }
        }
    }
}

/// RFC 7636 §4.2: `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// `AC-3`: is `redirect_uri` one the client registered? Patterns are
/// matched whole, as XSUAA's `redirect-uris` are: `*` stands for a run of
/// characters within one part (no `/ ? @ : \ # %`), `**` for any run, so
/// `http://localhost:*/**` admits every local port and path and
/// `https://*.example.test/cb` no other host. RFC 6749 §4.1.2.1: on a
/// mismatch the server "MUST NOT automatically redirect the user-agent to
/// the invalid redirection URI". Which patterns a client has is the
/// configuration's (XSUAA: `oauth2-configuration.redirect-uris` of
/// xs-security.json); no page gives the mock's defaults, so they are a
/// choice: loopback and `.test` hosts.
pub fn redirect_allowed(redirect_uri: &str, registered: &[String]) -> bool {
    // A URI with a fragment is never a redirection endpoint (§3.1.2). A
    // backslash is a slash to a browser (`https://evil.com\.test/` goes to
    // evil.com), and whitespace, control and non-ASCII characters have no
    // business in a redirect URI: each is refused before any pattern.
    let clean = redirect_uri.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#');
    redirect_uri.len() <= 2048 && clean && registered.iter().any(|p| glob(p.as_bytes(), redirect_uri.as_bytes()))
}

/// Whole-string match of `s` against `p` (`*` within a part, `**` across
/// parts), by dynamic programming: linear in |p|·|s|, whatever the stars.
fn glob(p: &[u8], s: &[u8]) -> bool {
    // Tokens: Some(byte) literal, None(false) single star, None(true) double.
    let mut toks: Vec<Option<u8>> = Vec::new();
    let mut deep: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'*' {
            let double = p.get(i + 1) == Some(&b'*');
            toks.push(None);
            deep.push(double);
            i += if double { 2 } else { 1 };
        } else {
            toks.push(Some(p[i]));
            deep.push(false);
            i += 1;
        }
    }
    // Within one part: never a path, query, userinfo or port separator, nor
    // anything a browser reads as one.
    let in_part = |b: u8| !b"/?@:\\#%".contains(&b);
    // m[j]: does the token prefix of length j match the string prefix so far?
    let mut m = vec![false; toks.len() + 1];
    m[0] = true;
    for j in 0..toks.len() {
        m[j + 1] = m[j] && toks[j].is_none();
    }
    for &b in s {
        let mut next = vec![false; toks.len() + 1];
        for j in 0..toks.len() {
            next[j + 1] = match toks[j] {
                Some(l) => m[j] && l == b,
                // A star eats `b` (staying on it) if `b` may be in its run.
                None => (m[j + 1] || m[j]) && (deep[j] || in_part(b)) || next[j],
            };
        }
        m = next;
    }
    m[toks.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    /// RFC 7636 Appendix B's example pair.
    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    fn issued(ch: Option<&Challenge>) -> Issued<'_> {
        Issued { client_id: "c", redirect_uri: Some("http://localhost:5000/cb"), challenge: ch, expires: 100 }
    }

    fn redemption(v: Option<&str>) -> Redemption<'_> {
        Redemption { client_id: "c", redirect_uri: Some("http://localhost:5000/cb"), code_verifier: v, now: 50 }
    }

    #[test]
    fn a_code_is_redeemed_only_with_its_verifier_client_and_redirect() {
        let ch = Challenge::S256(s256(VERIFIER));
        assert_eq!(redeem(&issued(Some(&ch)), &redemption(Some(VERIFIER))), Ok(()));
        let other = "x".repeat(43);
        assert_eq!(redeem(&issued(Some(&ch)), &redemption(Some(&other))), Err(RedeemError::VerifierMismatch));
        assert_eq!(redeem(&issued(Some(&ch)), &redemption(None)), Err(RedeemError::VerifierMissing));
        assert_eq!(redeem(&issued(None), &redemption(Some(VERIFIER))), Err(RedeemError::UnexpectedVerifier));
        assert_eq!(redeem(&issued(None), &redemption(None)), Ok(()));
        let r = Redemption { client_id: "d", ..redemption(None) };
        assert_eq!(redeem(&issued(None), &r), Err(RedeemError::OtherClient));
        let r = Redemption { redirect_uri: None, ..redemption(None) };
        assert_eq!(redeem(&issued(None), &r), Err(RedeemError::RedirectMismatch));
        let r = Redemption { now: 101, ..redemption(None) };
        assert_eq!(redeem(&issued(None), &r), Err(RedeemError::Expired));
        let plain = Challenge::Plain(VERIFIER.into());
        assert_eq!(redeem(&issued(Some(&plain)), &redemption(Some(VERIFIER))), Ok(()));
    }

    #[test]
    fn challenges_follow_the_policy() {
        let c = s256(VERIFIER);
        assert_eq!(challenge(None, None, PkcePolicy::Optional), Ok(None));
        assert_eq!(challenge(None, None, PkcePolicy::RequiredS256), Err(RequestError::PkceRequired));
        assert_eq!(challenge(Some(&c), None, PkcePolicy::Optional), Ok(Some(Challenge::Plain(c.clone()))));
        assert_eq!(challenge(Some(&c), None, PkcePolicy::RequiredS256), Err(RequestError::PkceRequired));
        assert_eq!(challenge(Some(&c), Some("S256"), PkcePolicy::RequiredS256), Ok(Some(Challenge::S256(c.clone()))));
        assert_eq!(challenge(Some("short"), Some("S256"), PkcePolicy::Optional), Err(RequestError::BadChallenge));
        assert!(matches!(challenge(Some(&c), Some("S512"), PkcePolicy::Optional), Err(RequestError::UnknownMethod(_))));
    }

    #[test]
    fn redirect_patterns_match_whole_uris() {
        let reg = vec!["http://localhost:*/**".to_string(), "https://*.example.test/login/callback".to_string()];
        assert!(redirect_allowed("http://localhost:5000/login/callback", &reg));
        assert!(redirect_allowed("https://mytenant.example.test/login/callback", &reg));
        assert!(!redirect_allowed("https://evil.test/login/callback", &reg));
        assert!(!redirect_allowed("https://mytenant.example.test/login/callback/x", &reg));
        assert!(!redirect_allowed("http://localhost:5000/cb#frag", &reg));
        assert!(!redirect_allowed("http://localhost:5000/cb", &[]));
        // A star stays within its part: no other host hides in front.
        assert!(!redirect_allowed("https://evil.test/x.example.test/login/callback", &reg));
        assert!(!redirect_allowed("https://evil.test?.example.test/login/callback", &reg));
        assert!(!redirect_allowed("https://u@evil.test/.example.test/login/callback", &reg));
        assert!(redirect_allowed("http://localhost:5000/", &reg));
        // A backslash is a slash to a browser; `%`, `:` and control
        // characters cannot hide a host in front either.
        let test = vec!["https://*.test/**".to_string(), "http://*.localhost:*/**".to_string()];
        for evil in [
            "https://evil.com\\.test/cb",
            "https://evil.com%5C.test/cb",
            "https://evil.com:443.test/cb",
            "http://evil.com\\.localhost:5000/cb",
            "https://evil.com\t.test/cb",
            "https://a.test/cb\r\nSet-Cookie:x",
        ] {
            assert!(!redirect_allowed(evil, &test), "{evil}");
        }
        assert!(redirect_allowed("https://mytenant.app.test/login/callback?x=1", &test));
        assert!(redirect_allowed("http://mytenant.localhost:5000/login/callback", &test));
    }
}
