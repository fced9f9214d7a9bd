//! What a stack is made of: the configuration (also `idprop up --config`),
//! its validation with paths to the offending values, and start-up errors.

use super::*;

/// Errors starting a stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("test PKI: {0}")]
    Pki(#[from] PkiError),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind { what: String, addr: SocketAddr, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    /// A value of the configuration that cannot be served; `path` names it
    /// (`uaa.tenants[1].subdomain`).
    #[error("configuration: {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The longest token lifetime a configuration may ask for (ten years): no
/// `exp` may overflow.
pub const MAX_TOKEN_VALIDITY: u64 = 10 * 365 * 24 * 3600;

impl StackConfig {
    /// What the types cannot say: no duplicate tenants, clients, users or
    /// destinations (the second would be unreachable), names present, a
    /// UAA domain, numbers in range (none may wrap). Each error names the
    /// path of the offending value (`uaa.tenants[1].subdomain`), which
    /// `yaml::locate` (feature `yaml`) turns into a line and column of the file.
    pub fn validate(&self) -> Result<(), StackError> {
        let bad = |path: String, message: String| Err(StackError::Invalid { path, message });
        let u = &self.uaa;
        if u.domain.trim().is_empty() {
            return bad("uaa.domain".into(), "is empty".into());
        }
        if !(1..=MAX_TOKEN_VALIDITY).contains(&u.token_validity) {
            return bad(
                "uaa.token_validity".into(),
                format!("{} is not between 1 and {MAX_TOKEN_VALIDITY} seconds", u.token_validity),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in u.tenants.iter().enumerate() {
            if t.subdomain.trim().is_empty() || !seen.insert(t.subdomain.to_ascii_lowercase()) {
                return bad(
                    format!("uaa.tenants[{i}].subdomain"),
                    format!("{:?} is empty or given twice", t.subdomain),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in u.clients.iter().enumerate() {
            if !seen.insert(c.client_id.as_str()) {
                return bad(format!("uaa.clients[{i}].client_id"), format!("{:?} is given twice", c.client_id));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, x) in u.users.iter().enumerate() {
            if !seen.insert(x.user_name.as_str()) {
                return bad(format!("uaa.users[{i}].user_name"), format!("{:?} is given twice", x.user_name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().flatten().enumerate() {
            let name = d.properties.name();
            if name.is_empty() {
                return bad(format!("destinations[{i}]"), "has no Name".into());
            }
            if !seen.insert((d.tenant.clone(), d.level, name.to_string())) {
                return bad(
                    format!("destinations[{i}].properties.Name"),
                    format!("{name:?} is given twice at the same tenant and level"),
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.connectors.iter().enumerate() {
            if !seen.insert(c.location_id.as_str()) {
                return bad(format!("connectors[{i}].location_id"), format!("{:?} is given twice", c.location_id));
            }
            if c.certificate_validity_minutes > crate::connector::MAX_VALIDITY_MINUTES {
                return bad(
                    format!("connectors[{i}].certificate_validity_minutes"),
                    format!(
                        "{} is over the maximum of {} (30 days)",
                        c.certificate_validity_minutes,
                        crate::connector::MAX_VALIDITY_MINUTES
                    ),
                );
            }
            if c.expiration_tolerance_hours > crate::connector::MAX_TOLERANCE_HOURS {
                return bad(
                    format!("connectors[{i}].expiration_tolerance_hours"),
                    format!(
                        "{} is over the maximum of {} (14 days)",
                        c.expiration_tolerance_hours,
                        crate::connector::MAX_TOLERANCE_HOURS
                    ),
                );
            }
        }
        if self.journal_bytes < 64 * 1024 {
            return bad("journal_bytes".into(), format!("{} is below the minimum of 65536", self.journal_bytes));
        }
        self.limits.validate().map_err(|m| {
            let (path, message) = m.split_once(": ").unwrap_or(("limits", m.as_str()));
            StackError::Invalid { path: path.to_string(), message: message.to_string() }
        })
    }
}

/// Fixed ports (0 = any free port). `idprop up` uses fixed defaults; tests
/// use ephemeral ones so stacks never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ports {
    pub gateway: u16,
    pub uaa: u16,
    pub destination: u16,
    pub connectivity: u16,
    pub backend_http: u16,
    pub backend_https: u16,
}

impl Ports {
    /// `base` for the gateway, the next ports for the other components.
    /// `base` and the five ports after it; `None` when they do not fit
    /// below 65536.
    pub fn checked_consecutive(base: u16) -> Option<Self> {
        base.checked_add(5).map(|_| Self::consecutive(base))
    }

    /// `base` and the five ports after it (see [`Ports::checked_consecutive`]).
    pub fn consecutive(base: u16) -> Self {
        Self {
            gateway: base,
            uaa: base + 1,
            destination: base + 2,
            connectivity: base + 3,
            backend_http: base + 4,
            backend_https: base + 5,
        }
    }
}

/// A token server in a configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenServerConfig {
    pub host: String,
    #[serde(default)]
    pub behaviour: TokenServerBehaviour,
}

/// Everything a stack is made of; also the shape of `idprop up --config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StackConfig {
    /// Address every listener binds to; loopback unless said otherwise.
    pub bind: IpAddr,
    pub ports: Ports,
    pub uaa: UaaConfig,
    pub token_servers: Vec<TokenServerConfig>,
    /// Destinations of the Destination service; one of every
    /// authentication type when absent.
    pub destinations: Option<Vec<DestinationEntry>>,
    /// Destination fragments (f56600a): properties with a `FragmentName`.
    pub fragments: Vec<DestinationEntry>,
    /// Key stores uploaded to the Destination service.
    pub certificates: Vec<Certificate>,
    /// Cloud Connectors, one per location id.
    pub connectors: Vec<ConnectorConfig>,
    pub backend: BackendConfig,
    /// Identity providers beside the UAA (IAS tenants, any OIDC issuer);
    /// the default Cloud Connector trusts each.
    pub identity_providers: Vec<crate::oidc::ProviderConfig>,
    /// The application of seed 000 (`app.example.test`).
    pub app: crate::app::AppConfig,
    /// Journal entries kept (oldest dropped first); everything when absent.
    pub journal_capacity: Option<usize>,
    /// Bytes the journal may hold (oldest dropped first; each entry's
    /// values are truncated with a marker beyond a per-entry cap).
    pub journal_bytes: usize,
    /// Timeouts and connection caps of every listener.
    pub limits: Limits,
    /// Where the CA bundle is written (a fresh temporary folder when absent).
    pub state_dir: Option<PathBuf>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: Ports::default(),
            uaa: UaaConfig::default(),
            token_servers: vec![
                TokenServerConfig { host: "authserver.example.test".into(), behaviour: Default::default() },
                // An OAuth server inside the on-premise network, reached
                // through the Cloud Connector (`oauth.onprem.test` mapping).
                TokenServerConfig { host: ON_PREMISE_OAUTH_HOST.into(), behaviour: Default::default() },
            ],
            destinations: None,
            fragments: crate::destination::default_fragments(),
            certificates: Vec::new(),
            connectors: vec![ConnectorConfig::default()],
            backend: BackendConfig::default(),
            app: Default::default(),
            identity_providers: crate::oidc::default_providers(),
            journal_capacity: None,
            journal_bytes: crate::journal::DEFAULT_MAX_BYTES,
            limits: Limits::default(),
            state_dir: None,
        }
    }
}
