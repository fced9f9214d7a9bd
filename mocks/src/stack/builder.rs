//! [`StackBuilder`]: a stack with non-default tenants, clients, users,
//! token servers, destinations and connectors.

use super::*;

/// Builds a [`Stack`] with non-default configuration.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct StackBuilder {
    config: StackConfig,
}

impl StackBuilder {
    pub fn config(mut self, config: StackConfig) -> Self {
        self.config = config;
        self
    }
    pub fn uaa_domain(mut self, domain: &str) -> Self {
        self.config.uaa.domain = domain.into();
        self
    }
    pub fn tenant(mut self, subdomain: &str) -> Self {
        self.config.uaa.tenants.push(crate::uaa::Tenant::new(subdomain));
        self
    }
    pub fn client(mut self, client: OAuthClient) -> Self {
        self.config.uaa.clients.retain(|c| c.client_id != client.client_id);
        self.config.uaa.clients.push(client);
        self
    }
    pub fn user(mut self, user: User) -> Self {
        self.config.uaa.users.retain(|u| u.user_name != user.user_name);
        self.config.uaa.users.push(user);
        self
    }
    pub fn token_server(mut self, host: &str, behaviour: TokenServerBehaviour) -> Self {
        self.config.token_servers.retain(|t| t.host != host);
        self.config.token_servers.push(TokenServerConfig { host: host.into(), behaviour });
        self
    }
    /// Adds a destination (the default set is replaced by the first one).
    pub fn destination(mut self, entry: DestinationEntry) -> Self {
        self.config.destinations.get_or_insert_with(Vec::new).push(entry);
        self
    }
    /// Replaces the connector of `config.location_id` (or adds one).
    pub fn connector(mut self, config: ConnectorConfig) -> Self {
        self.config.connectors.retain(|c| c.location_id != config.location_id);
        self.config.connectors.push(config);
        self
    }
    pub fn backend(mut self, config: BackendConfig) -> Self {
        self.config.backend = config;
        self
    }
    pub fn certificate(mut self, c: Certificate) -> Self {
        self.config.certificates.push(c);
        self
    }
    pub fn ports(mut self, ports: Ports) -> Self {
        self.config.ports = ports;
        self
    }
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.config.bind = ip;
        self
    }
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.state_dir = Some(dir.into());
        self
    }
    pub async fn start(self) -> Result<Stack, StackError> {
        Stack::start_with(self.config).await
    }
}
