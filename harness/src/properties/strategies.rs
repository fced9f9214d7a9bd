//! The generated cases: destinations and tokens, with the strategies that
//! shrink them.

use super::*;

/// Where the token URL puts the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlShape {
    Plain,
    HostPlaceholder,
    MidHostPlaceholder,
    PathPlaceholder,
}

/// The authentication type of a generated destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    ClientCredentials,
    /// `ProxyType: OnPremise`, the token under `SAP-Connectivity-Technical-Authentication` (`FD-2`).
    TechnicalUserPropagation,
    /// A user token exchanged by the jwt-bearer grant (`AT-1`).
    JwtBearer,
}

impl AuthKind {
    fn as_str(self) -> &'static str {
        match self {
            AuthKind::ClientCredentials => "OAuth2ClientCredentials",
            AuthKind::TechnicalUserPropagation => "OAuth2TechnicalUserPropagation",
            AuthKind::JwtBearer => "OAuth2JWTBearer",
        }
    }
}

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creds {
    Default,
    InBody(bool),
    ServiceUser { in_body: Option<bool>, user: String, password: String },
}

/// One generated token-retrieval case.
#[derive(Debug, Clone)]
pub struct RetrievalCase {
    pub tenant: String,
    pub shape: UrlShape,
    pub url_type: Option<String>,
    pub creds: Creds,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub queries: BTreeMap<String, String>,
    pub body: BTreeMap<String, String>,
    pub scope: Option<String>,
    pub client_secret: String,
    pub auth: AuthKind,
    /// `tokenServiceURL.ProxyType: Internet` set explicitly (`TU-6`).
    pub token_proxy_type: bool,
    /// `URL.headers.*` / `URL.queries.*`: for the client, never the token service (`PX-4`).
    pub url_headers: BTreeMap<String, String>,
    pub url_queries: BTreeMap<String, String>,
    /// Lookups one after the other: the second is served from the cache (`CH-1`).
    pub lookups: u8,
}

impl RetrievalCase {
    pub fn destination(&self) -> Destination {
        let url = match self.shape {
            UrlShape::Plain => format!("https://{HOST}/oauth/token"),
            UrlShape::HostPlaceholder => format!("https://{{tenant}}.{HOST}/oauth/token"),
            UrlShape::MidHostPlaceholder => format!("https://oauth.{{tenant}}.{HOST}/token"),
            UrlShape::PathPlaceholder => format!("https://{HOST}/tenant/{{tenant}}/oauth/token"),
        };
        let proxy = if self.auth == AuthKind::TechnicalUserPropagation { "OnPremise" } else { "Internet" };
        let mut d = Destination::new()
            .with("Name", "generated")
            .with("Type", "HTTP")
            .with("URL", "https://api.example.test")
            .with("ProxyType", proxy)
            .with("Authentication", self.auth.as_str())
            .with("clientId", "prop-client")
            .with("clientSecret", &self.client_secret)
            .with("tokenServiceURL", &url);
        if let Some(t) = &self.url_type {
            d = d.with("tokenServiceURLType", t);
        }
        match &self.creds {
            Creds::Default => {}
            Creds::InBody(b) => {
                d = d.with("tokenService.addClientCredentialsInBody", if *b { "true" } else { "false" })
            }
            Creds::ServiceUser { in_body, user, password } => {
                d = d.with("tokenServiceUser", user).with("tokenServicePassword", password);
                if let Some(b) = in_body {
                    d = d.with("tokenService.addClientCredentialsInBody", if *b { "true" } else { "false" });
                }
            }
        }
        if let Some(t) = &self.connect_timeout {
            d = d.with("tokenServiceURL.ConnectionTimeoutInSeconds", t);
        }
        if let Some(t) = &self.read_timeout {
            d = d.with("tokenServiceURL.SocketReadTimeoutInSeconds", t);
        }
        for (k, v) in &self.headers {
            d = d.with(&format!("tokenServiceURL.headers.{k}"), v);
        }
        for (k, v) in &self.queries {
            d = d.with(&format!("tokenServiceURL.queries.{k}"), v);
        }
        for (k, v) in &self.body {
            d = d.with(&format!("tokenService.body.{k}"), v);
        }
        if let Some(s) = &self.scope {
            d = d.with("scope", s);
        }
        if self.token_proxy_type {
            d = d.with("tokenServiceURL.ProxyType", "Internet");
        }
        for (k, v) in &self.url_headers {
            d = d.with(&format!("URL.headers.{k}"), v);
        }
        for (k, v) in &self.url_queries {
            d = d.with(&format!("URL.queries.{k}"), v);
        }
        d
    }

    /// The tenant of the call: a jwt-bearer case is made for `mytenant`,
    /// whose UAA minted the user token (`TU-5`).
    pub(crate) fn call_tenant(&self) -> &str {
        if self.auth == AuthKind::JwtBearer {
            "mytenant"
        } else {
            &self.tenant
        }
    }
}

fn tenant() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

fn timeout() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        2 => (1u32..=60).prop_map(|n| Some(n.to_string())),
        1 => (61u32..100_000).prop_map(|n| Some(n.to_string())),
        1 => prop::sample::select(vec!["0", "-5", "abc", "2.5", " 7 ", "", "+3", "99999999999999999999"]).prop_map(|s| Some(s.to_string())),
    ]
}

/// Generated token-retrieval cases.
pub fn retrieval_cases() -> impl Strategy<Value = RetrievalCase> {
    let shape_and_type = prop_oneof![
        Just((UrlShape::Plain, None)),
        Just((UrlShape::Plain, Some("Dedicated".to_string()))),
        Just((UrlShape::Plain, Some("Common".to_string()))),
        Just((UrlShape::Plain, Some("common".to_string()))),
        Just((UrlShape::HostPlaceholder, Some("Common".to_string()))),
        Just((UrlShape::MidHostPlaceholder, Some("Common".to_string()))),
        Just((UrlShape::PathPlaceholder, Some("Common".to_string()))),
    ];
    let creds = prop_oneof![
        Just(Creds::Default),
        any::<bool>().prop_map(Creds::InBody),
        (prop::option::of(any::<bool>()), "[a-zA-Z0-9!._-]{1,12}", "[ -~]{0,12}")
            .prop_map(|(in_body, user, password)| Creds::ServiceUser { in_body, user, password }),
    ];
    let header_key = "X-[A-Za-z0-9-]{1,12}";
    let header_val = "([!-~]([ -~]{0,16}[!-~])?)?";
    let awkward = "[a-zA-Z0-9 _.~%&=+/:äß-]{1,10}";
    (
        tenant(),
        shape_and_type,
        creds,
        timeout(),
        timeout(),
        prop::collection::btree_map(header_key, header_val, 0..3),
        prop::collection::btree_map(awkward, awkward, 0..3),
        prop::collection::btree_map("[a-z][a-z0-9_]{0,10}", awkward, 0..3),
        prop::option::of("[a-z][a-z:. ]{0,18}[a-z]"),
        "[ -~]{0,16}",
        (
            prop_oneof![
                3 => Just(AuthKind::ClientCredentials),
                1 => Just(AuthKind::TechnicalUserPropagation),
                1 => Just(AuthKind::JwtBearer),
            ],
            any::<bool>(),
            prop::collection::btree_map("U-[A-Za-z0-9]{1,8}", "[a-z0-9]{1,8}", 0..2),
            prop::collection::btree_map("u[a-z0-9]{1,8}", "[a-z0-9]{1,8}", 0..2),
            prop_oneof![3 => Just(1u8), 1 => Just(2u8)],
        ),
    )
        .prop_map(
            |(
                tenant,
                (shape, url_type),
                creds,
                connect_timeout,
                read_timeout,
                headers,
                queries,
                body,
                scope,
                client_secret,
                (auth, token_proxy_type, url_headers, url_queries, lookups),
            )| {
                // Header names are case-insensitive: keep one spelling per name.
                let mut seen = std::collections::HashSet::new();
                let headers = headers.into_iter().filter(|(k, _)| seen.insert(k.to_ascii_lowercase())).collect();
                RetrievalCase {
                    tenant,
                    shape,
                    url_type,
                    creds,
                    connect_timeout,
                    read_timeout,
                    headers,
                    queries,
                    body,
                    scope,
                    client_secret,
                    auth,
                    token_proxy_type,
                    url_headers,
                    url_queries,
                    lookups,
                }
            },
        )
}

/// One generated principal-mapping case.
#[derive(Debug, Clone)]
pub struct MappingCase {
    /// Principal and extra claims of the token.
    pub claims: BTreeMap<String, String>,
    pub technical: bool,
    pub pattern: String,
    pub forgery: Option<Forgery>,
    /// Issued by a trusted tenant (else by `stranger`, whom nobody trusts).
    pub trusted: bool,
}

/// Generated principal-mapping cases.
pub fn mapping_cases() -> impl Strategy<Value = MappingCase> {
    let value = prop_oneof![
        3 => "[a-zA-Z0-9@._-]{1,16}".sboxed(),
        1 => "[ -~]{1,16}".sboxed(),
        1 => "\\PC{1,8}".sboxed(),
        // Re-expansion and injection: a value is never a pattern (SP-4).
        1 => prop::sample::select(vec!["${email}", "${name}", "a,O=evil", "x+OU=y", "#lead", " pad "])
            .prop_map(str::to_string)
            .sboxed(),
    ];
    // Each principal claim present with probability 0.35: small subsets,
    // `sub` alone included, come up often.
    let principal_claims = prop::collection::vec(prop::bool::weighted(0.35), 5).prop_map(|keep| {
        ["user_name", "email", "mail", "user_uuid", "sub"]
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
    });
    let patterns = prop::sample::select(vec![
        "CN=${name}",
        "CN=${name},O=ACME",
        "CN=${name},OU=${email},O=Org",
        "CN=${mail}",
        "EMAIL=${email},CN=${name},C=DE",
        "CN=${user_uuid},L=Walldorf,ST=BW",
        "CN=${name},OU=${department}",
    ]);
    let forgery = prop_oneof![
        2 => Just(None),
        1 => prop::sample::select(vec![Forgery::AlgNone, Forgery::Hs256WithPublicKey, Forgery::WrongKey, Forgery::Expired, Forgery::NotYetValid, Forgery::UnknownKid]).prop_map(Some),
    ];
    let trusted = prop::bool::weighted(0.9);
    let technical = prop::bool::weighted(0.25);
    (
        principal_claims,
        prop::collection::vec(value.clone(), 5),
        prop::option::of(value),
        technical,
        patterns,
        forgery,
        trusted,
    )
        .prop_map(|(names, values, department, technical, pattern, forgery, trusted)| {
            let mut claims: BTreeMap<String, String> =
                names.iter().zip(values).map(|(n, v)| (n.to_string(), v)).collect();
            if let Some(d) = department {
                claims.insert("department".into(), d);
            }
            if technical {
                claims.insert("client_id".into(), "prop-client".into());
                claims.insert("azp".into(), "prop-azp".into());
            }
            MappingCase { claims, technical, pattern: pattern.to_string(), forgery, trusted }
        })
}

impl MappingCase {
    pub(crate) fn token_spec(&self) -> TokenSpec {
        let now = unix_now();
        let mut only: Map<String, Value> = self.claims.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        only.insert("exp".into(), json!(now + 3600));
        only.insert("iat".into(), json!(now));
        if self.technical {
            only.insert("grant_type".into(), json!("client_credentials"));
        }
        let tenant = (!self.trusted).then(|| "stranger".to_string());
        TokenSpec { only_claims: Some(only), forge: self.forgery, tenant, ..Default::default() }
    }
}
