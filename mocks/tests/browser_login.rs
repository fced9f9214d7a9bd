//! The browser login of the mock UAA and the mock IAS tenant: the
//! authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636), a login
//! page, logout; and the X.509 client credential of an IAS client with
//! which, over mTLS, it calls the Destination service (ce25f2b).

mod common;

use common::{claims, post_form, stack, APP};
use idprop_mocks::oidc::{IAS_CLIENT, IAS_X509_CLIENT};
use idprop_mocks::Stack;
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7636 Appendix B: S256 of [`VERIFIER`].
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "http://localhost:5000/login/callback";

/// A browser: follows nothing by itself, keeps the session cookie.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(stack: &Stack) -> Self {
        let http = stack.http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, cookie: None }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_string();
            self.cookie = pair.split_once('=').filter(|(_, v)| !v.is_empty()).map(|_| pair.clone());
        }
    }

    async fn answer(&mut self, resp: reqwest::Response) -> Answer {
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        Answer { status, location, body: resp.text().await.unwrap() }
    }

    async fn get(&mut self, url: &str) -> Answer {
        let mut req = self.http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.answer(resp).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let mut req = self.http.post(url).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.answer(resp).await
    }
}

/// The hidden `request` field of a login page.
fn hidden_request(page: &str) -> String {
    let at = page.find("name=\"request\" value=\"").expect("the login page carries the request") + 22;
    let v = &page[at..at + page[at..].find('"').unwrap()];
    v.replace("&amp;", "&").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
}

fn query_param(url: &str, k: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes()).find(|(n, _)| n == k).map(|(_, v)| v.into_owned())
}

/// Logs `user` in at `base` (authorize → login page → credentials → back
/// to authorize → code) and returns the code.
async fn log_in(
    b: &mut Browser,
    base: &str,
    paths: (&str, &str),
    client: &str,
    user: (&str, &str),
    pkce: bool,
) -> String {
    let mut url = format!(
        "{base}{}?response_type=code&client_id={client}&redirect_uri={}&state=xyz",
        paths.0,
        urlencode(CALLBACK)
    );
    if pkce {
        url.push_str(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"));
    }
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "no session yet: the login page; {}", page.body);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    let request = hidden_request(&page.body);
    let wrong = b
        .post(&format!("{base}{}", paths.1), &[("username", user.0), ("password", "nope"), ("request", &request)])
        .await;
    assert_eq!(wrong.status, 401, "a wrong password gets the page again");
    assert!(b.cookie.is_none(), "no session for a wrong password");
    let ok = b
        .post(&format!("{base}{}", paths.1), &[("username", user.0), ("password", user.1), ("request", &request)])
        .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert!(b.cookie.is_some(), "a session cookie");
    let back = ok.location.unwrap();
    assert!(back.starts_with(paths.0), "back to the authorization endpoint: {back}");
    let code = b.get(&format!("{base}{back}")).await;
    assert_eq!(code.status, 302, "{}", code.body);
    let to = code.location.unwrap();
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("xyz"));
    query_param(&to, "code").expect("a code")
}

/// An HTTP client presenting the TEST ONLY certificate of the IAS tenant's
/// X.509 client (its only credential).
fn x509_client(stack: &Stack, ias: &idprop_mocks::oidc::IdentityProvider) -> reqwest::Client {
    let client = ias.config().clients.iter().find(|c| c.client_id == IAS_X509_CLIENT).unwrap();
    let (cert, key) = stack.client_credential(client).expect("a TEST ONLY credential of the client's subject");
    let identity = reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap();
    stack.http_client_builder().identity(identity).build().unwrap()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The application router's login: authorize with PKCE S256, the login
/// page, the code for a token of alice (client secret in the body, as
/// approuter sends it), a refresh token; a code is used once; central
/// logout ends the session.
#[tokio::test]
async fn the_uaa_logs_a_browser_in_with_a_code_and_pkce() {
    let stack = stack().await;
    let base = stack.uaa_url("mytenant");
    let mut b = Browser::new(&stack);
    let code = log_in(&mut b, &base, ("/oauth/authorize", "/login.do"), APP.0, ("alice", "alice-password"), true).await;
    let token_url = format!("{base}/oauth/token");
    let exchange = |code: String, verifier: &'static str| {
        let stack = &stack;
        let token_url = token_url.clone();
        async move {
            post_form(
                stack,
                &token_url,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", verifier),
                    ("client_id", APP.0),
                    ("client_secret", APP.1),
                ],
            )
            .await
        }
    };
    let (s, t) = exchange(code.clone(), VERIFIER).await;
    assert_eq!(s, 200, "{t}");
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(c["user_name"], "alice");
    assert_eq!(c["grant_type"], "authorization_code");
    assert_eq!(c["ext_attr"]["zdn"], "mytenant");
    assert!(c["scope"].as_array().unwrap().iter().any(|s| s == "idprop-app!t1.Read"), "{c:?}");
    assert!(t["refresh_token"].is_string() && t["expires_in"].is_number(), "{t}");
    let (s, again) = exchange(code, VERIFIER).await;
    assert_eq!((s, again["error"].as_str()), (400, Some("invalid_grant")), "a code is used once: {again}");

    // The session logs the next request in without a page; a wrong
    // verifier redeems nothing.
    let url = format!(
        "{base}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        APP.0,
        urlencode(CALLBACK)
    );
    let sso = b.get(&url).await;
    assert_eq!(sso.status, 302);
    let code = query_param(&sso.location.unwrap(), "code").unwrap();
    let (s, bad) = exchange(code, "x-wrong-verifier-x-wrong-verifier-x-wrong-verifier").await;
    assert_eq!(s, 400);
    assert!(bad["error_description"].as_str().unwrap().contains("RFC 7636 §4.6"), "{bad}");

    // The refresh token of the login works (approuter refreshes with Basic).
    let (s, r) = post_form(
        &stack,
        &token_url,
        Some(APP),
        &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(claims(r["access_token"].as_str().unwrap())["user_name"], "alice");

    // Central logout: a registered redirect is followed, the session is gone.
    let out =
        b.get(&format!("{base}/logout.do?redirect={}&client_id={}", urlencode("http://localhost:5000/"), APP.0)).await;
    assert_eq!((out.status, out.location.as_deref()), (302, Some("http://localhost:5000/")));
    assert!(b.cookie.is_none(), "the session cookie is cleared");
    assert_eq!(b.get(&url).await.status, 200, "logged out: the login page again");
}

/// What must not redirect does not (RFC 6749 §4.1.2.1), other errors go
/// back to the client with `state`, another tenant's session is no session,
/// and logout never redirects to an unregistered URI.
#[tokio::test]
async fn the_uaa_login_refuses_bad_redirects_and_keeps_tenants_apart() {
    let stack = stack().await;
    let base = stack.uaa_url("mytenant");
    let mut b = Browser::new(&stack);
    let evil = b
        .get(&format!(
            "{base}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}",
            APP.0,
            urlencode("https://evil.example.com/cb")
        ))
        .await;
    assert_eq!((evil.status, evil.location), (400, None), "{}", evil.body);
    assert!(evil.body.contains("not registered"), "{}", evil.body);
    let unknown = b
        .get(&format!(
            "{base}/oauth/authorize?response_type=code&client_id=nobody&redirect_uri={}",
            urlencode(CALLBACK)
        ))
        .await;
    assert_eq!((unknown.status, unknown.location), (400, None));
    let implicit = b
        .get(&format!(
            "{base}/oauth/authorize?response_type=token&client_id={}&redirect_uri={}&state=s1",
            APP.0,
            urlencode(CALLBACK)
        ))
        .await;
    let to = implicit.location.expect("an error goes back to a good redirect URI");
    assert_eq!(query_param(&to, "error").as_deref(), Some("unsupported_response_type"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("s1"));

    log_in(&mut b, &base, ("/oauth/authorize", "/login.do"), APP.0, ("alice", "alice-password"), false).await;
    // What a code remembers is bounded: a huge scope is refused, not kept.
    let huge = b
        .get(&format!(
            "{base}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}",
            APP.0,
            urlencode(CALLBACK),
            "x".repeat(4096)
        ))
        .await;
    assert_eq!(query_param(&huge.location.unwrap(), "error").as_deref(), Some("invalid_scope"));
    let other = stack.uaa_url("othertenant");
    let there = b
        .get(&format!(
            "{other}/oauth/authorize?response_type=code&client_id={}&redirect_uri={}",
            APP.0,
            urlencode(CALLBACK)
        ))
        .await;
    assert_eq!(there.status, 200, "mytenant's session does not log in at othertenant");

    let out = b
        .get(&format!("{base}/logout.do?redirect={}&client_id={}", urlencode("https://evil.example.com/"), APP.0))
        .await;
    assert_eq!((out.status, out.location), (200, None));
    assert!(out.body.contains("Not redirected"), "{}", out.body);
}

/// The discovery documents advertise the browser login that now exists
/// (and only response type `code`).
#[tokio::test]
async fn discovery_advertises_what_exists() {
    let stack = stack().await;
    let ias = &stack.identity_providers()[0];
    for url in [format!("{}/.well-known/openid-configuration", stack.uaa_url("mytenant")), ias.config().discovery_url()]
    {
        let d: Value = common::get_json(&stack, &url).await;
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]), "{url}");
        // Each answers as that endpoint does: authorize without a client is
        // the error page, the token endpoint wants a client, logout and the
        // keys answer.
        for (k, want) in
            [("authorization_endpoint", 400), ("token_endpoint", 401), ("end_session_endpoint", 200), ("jwks_uri", 200)]
        {
            let u = d[k].as_str().unwrap();
            let method = if k == "token_endpoint" { reqwest::Method::POST } else { reqwest::Method::GET };
            let s = stack.http_client().request(method, u).send().await.unwrap().status().as_u16();
            assert_eq!(s, want, "{k} {u}");
        }
    }
}

/// The IAS tenant's login: a client that requires PKCE S256 refuses a
/// request without it, logs alice in with it, and gets her token over mTLS
/// with its X.509 credential (no secret).
#[tokio::test]
async fn the_ias_tenant_logs_a_browser_in_and_takes_an_x509_client() {
    let stack = stack().await;
    let ias = stack.identity_providers()[0].clone();
    let base = ias.config().base_url();
    let mut b = Browser::new(&stack);
    let no_pkce = b
        .get(&format!(
            "{base}/oauth2/authorize?response_type=code&client_id={IAS_X509_CLIENT}&redirect_uri={}",
            urlencode(CALLBACK)
        ))
        .await;
    let to = no_pkce.location.expect("back to the client");
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{to}");
    let code = log_in(
        &mut b,
        &base,
        ("/oauth2/authorize", "/oauth2/login"),
        IAS_X509_CLIENT,
        ("alice", "alice-password"),
        true,
    )
    .await;

    let mtls = x509_client(&stack, &ias);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
        ("client_id", IAS_X509_CLIENT),
    ];
    let plain = stack.http_client().post(format!("{base}/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(plain.status().as_u16(), 401, "no certificate, no secret: no client");
    let body: Value = plain.json().await.unwrap();
    assert!(
        body["error_description"].as_str().unwrap().contains("neither a secret nor a client certificate"),
        "{body}"
    );
    // Client authentication failed before the code was looked at: the code
    // is still unused.
    let resp = mtls.post(format!("{base}/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let t: Value = resp.json().await.unwrap();
    let c = claims(t["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], ias.config().issuer.as_str());
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(c["azp"], IAS_X509_CLIENT);

    // A certificate authenticates only the client of its subject: the secret
    // client without its secret is refused over the X.509 client's mTLS,
    // and so is the X.509 client with a certificate of another subject.
    let form = [("grant_type", "client_credentials"), ("client_id", IAS_CLIENT.0)];
    let r = mtls.post(format!("{base}/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (cert, key) = stack.pki().client_cert_pem("someone-else").unwrap();
    let other = stack
        .http_client_builder()
        .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap())
        .build()
        .unwrap();
    let form = [("grant_type", "client_credentials"), ("client_id", IAS_X509_CLIENT)];
    let r = other.post(format!("{base}/oauth2/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("no X.509 credential of subject"), "{body}");
}

/// ce25f2b: an IAS token "is issued through mTLS" and "Authentication to
/// the Destination service via IAS token requires in addition mTLS": the
/// X.509 client's token reads the subaccount's destinations only over a
/// connection with its certificate.
#[tokio::test]
async fn the_destination_service_takes_an_ias_token_only_over_mtls() {
    let stack = stack().await;
    let ias = stack.identity_providers()[0].clone();
    let base = ias.config().base_url();
    let mtls = x509_client(&stack, &ias);
    let t: Value = mtls
        .post(format!("{base}/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", IAS_X509_CLIENT)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().expect("a token by mTLS").to_string();
    let url = format!("{}/destination-configuration/v1/subaccountDestinations", stack.destination_url());
    let with = mtls.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(with.status().as_u16(), 200);
    let list: Value = with.json().await.unwrap();
    assert!(list.as_array().unwrap().iter().any(|d| d["Name"] == "principal-propagation-example"), "{list}");
    let without = stack.http_client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(without.status().as_u16(), 401);
    assert!(without.text().await.unwrap().contains("requires in addition mTLS"));

    // Its X-user-token is judged as with the binding's token: one that names
    // nobody (no principal claim of PP-2) is refused.
    let mut nobody = stack.uaa().user_token("mytenant", "alice");
    for k in ["user_name", "email", "mail", "user_uuid", "sub", "user_id"] {
        nobody = nobody.without(k);
    }
    let r = mtls.get(&url).bearer_auth(&token).header("X-user-token", nobody.sign()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().await.unwrap().contains("X-user-token rejected"));
    // A token of an IAS tenant no subaccount trusts is refused even over mTLS.
    let untrusted = ias.sign(serde_json::Map::from_iter([
        ("iss".to_string(), Value::from("https://other.accounts.idp.test")),
        ("app_tid".to_string(), Value::from(stack.uaa().tenant("mytenant").unwrap().zid)),
        ("exp".to_string(), Value::from(idprop_mocks::tokens::unix_now() + 600)),
    ]));
    let s = mtls.get(&url).bearer_auth(untrusted).send().await.unwrap().status().as_u16();
    assert_eq!(s, 401);
}
