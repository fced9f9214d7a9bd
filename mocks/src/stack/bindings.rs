//! What an application is given to reach the stack: `VCAP_SERVICES` with
//! the configured secrets, and the ready file.

use super::*;

impl Stack {
    /// The secret the UAA's configuration gives `client_id` (the one source
    /// of truth for bindings, `env.sh` and `default-env.json`); the
    /// built-in default when the configuration dropped the client.
    fn secret_of(&self, (client_id, default): (&str, &str)) -> String {
        self.inner
            .uaa
            .config()
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .map(|c| c.client_secret.clone())
            .unwrap_or_else(|| default.to_string())
    }

    /// The environment of an application on this machine using the stack:
    /// `VCAP_SERVICES`, the proxy variables (the gateway), the CA variables
    /// of Node, Python and OpenSSL, and SAP Cloud SDK for Python's
    /// destination binding. What `idprop up` writes to `env.sh` and `.env`,
    /// and what tests give the real clients they run.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let vcap = self.vcap_services();
        let ca = self.ca_file().display().to_string();
        let gw = self.gateway_url();
        let mut vars: Vec<(String, String)> = vec![("VCAP_SERVICES".into(), vcap.to_string())];
        for k in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
            vars.push((k.into(), gw.clone()));
        }
        // Loopback stays direct: after `source env.sh`, `curl localhost:4004`
        // reaches the local application, not the gateway (which serves only
        // `.test` hosts). A `NO_PROXY` of the user's own is replaced, so it
        // cannot send `.test` hosts around the gateway.
        for k in ["NO_PROXY", "no_proxy"] {
            vars.push((k.into(), LOOPBACK_NO_PROXY.into()));
        }
        for k in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "IDPROP_CA_FILE"] {
            vars.push((k.into(), ca.clone()));
        }
        // SAP Cloud SDK for Python reads its destination binding from these,
        // not from VCAP_SERVICES; IDENTITYZONE must be the first label of
        // `url`, or it derives no tenant token URLs.
        let d = &vcap["destination"][0]["credentials"];
        for (key, field) in [
            ("CLIENTID", "clientid"),
            ("CLIENTSECRET", "clientsecret"),
            ("URL", "url"),
            ("URI", "uri"),
            ("IDENTITYZONE", "identityzone"),
        ] {
            vars.push((
                format!("CLOUD_SDK_CFG_DESTINATION_DEFAULT_{key}"),
                d[field].as_str().unwrap_or_default().into(),
            ));
        }
        vars
    }

    /// `VCAP_SERVICES` of an application bound to the mock services.
    pub fn vcap_services(&self) -> Value {
        let domain = self.inner.uaa.domain();
        let tenant = self.inner.config.uaa.tenants.first().map(|t| t.subdomain.clone()).unwrap_or_default();
        let uaa_url = format!("https://{tenant}.{domain}");
        let zid = self.inner.uaa.tenant(&tenant).map(|t| t.zid).unwrap_or_default();
        let mut vcap = json!({
            "xsuaa": [{
                "label": "xsuaa", "plan": "application", "name": "idprop-xsuaa", "tags": ["xsuaa"],
                "instance_name": "idprop-xsuaa", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": APP_CLIENT.0, "clientsecret": self.secret_of(APP_CLIENT),
                    "url": uaa_url, "uaadomain": domain, "identityzone": tenant,
                    "identityzoneid": zid, "tenantid": zid, "tenantmode": "shared",
                    "xsappname": "idprop-app!t1", "verificationkey": self.inner.pki.signing_keys()[0].public_pem(),
                    "credential-type": "binding-secret",
                }
            }],
            "destination": [{
                "label": "destination", "plan": "lite", "name": "idprop-destination", "tags": ["destination", "conn", "connsvc"],
                "instance_name": "idprop-destination", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": DESTINATION_CLIENT.0, "clientsecret": self.secret_of(DESTINATION_CLIENT),
                    "url": uaa_url, "uaadomain": domain, "identityzone": tenant, "tenantid": zid,
                    "uri": format!("https://{DESTINATION_HOST}"),
                    "xsappname": "clone-destination!b1", "instanceid": stable_uuid("destination-instance"),
                    "credential-type": "binding-secret",
                }
            }],
            "connectivity": [{
                "label": "connectivity", "plan": "lite", "name": "idprop-connectivity", "tags": ["connectivity", "conn", "connsvc"],
                "instance_name": "idprop-connectivity", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": CONNECTIVITY_CLIENT.0, "clientsecret": self.secret_of(CONNECTIVITY_CLIENT),
                    "url": uaa_url, "token_service_url": uaa_url, "uaadomain": domain,
                    "identityzone": tenant, "tenantid": zid,
                    "onpremise_proxy_host": self.connectivity_proxy_host(),
                    "onpremise_proxy_http_port": self.connectivity_proxy_port().to_string(),
                    "onpremise_proxy_port": self.connectivity_proxy_port().to_string(),
                    "onpremise_socks5_proxy_port": "0",
                    "xsappname": "clone-connectivity!b2", "instance_guid": crate::connectivity::instance_guid(),
                    "credential-type": "binding-secret", "token-type": ["xsuaa", "ias"],
                }
            }],
        });
        // The `identity` binding of the first IAS tenant, shaped as 9379444
        // shows it (`clientid`, `clientsecret`, `domains`, `url`).
        if let Some(ias) = self.inner.providers.iter().find(|p| p.config().kind == crate::oidc::ProviderKind::Ias) {
            let c = ias.config();
            let domain = c.host.split_once('.').map(|(_, d)| d.to_string()).unwrap_or_else(|| c.host.clone());
            let client = c.clients.first().cloned().unwrap_or_else(|| crate::uaa::OAuthClient::new("", ""));
            vcap["identity"] = json!([{
                "label": "identity", "plan": "application", "name": "idprop-identity", "tags": ["ias"],
                "instance_name": "idprop-identity", "binding_name": null, "provider": null,
                "credentials": {
                    "clientid": client.client_id, "clientsecret": client.client_secret,
                    "domains": [domain], "url": c.base_url(),
                    "app_tid": ias.tenant_id(), "credential-type": "SECRET",
                }
            }]);
        }
        vcap
    }

    fn connectivity_proxy_host(&self) -> String {
        self.inner.config.bind.to_string()
    }

    fn connectivity_proxy_port(&self) -> u16 {
        self.components()
            .get("connectivity-proxy")
            .and_then(|u| u.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// A TEST ONLY certificate and key (PEM) for `client`'s X.509 credential,
    /// when its subject is one the test CA issues ([`crate::pki::client_subject`]
    /// of its client id). Minted once per stack: every caller gets the same.
    pub fn client_credential(&self, client: &crate::uaa::OAuthClient) -> Option<(String, String)> {
        let want = crate::pki::client_subject(&client.client_id);
        if client.certificate_subject.as_deref() != Some(want.as_str()) {
            return None;
        }
        let mut minted = self.inner.client_credentials.lock().expect("client credentials lock");
        if let Some(c) = minted.get(&client.client_id) {
            return Some(c.clone());
        }
        let c = self.pki().client_cert_pem(&client.client_id).ok()?;
        minted.insert(client.client_id.clone(), c.clone());
        Some(c)
    }

    /// What `idprop up --ready-file` writes.
    pub fn ready_info(&self) -> Value {
        json!({
            "gateway": self.gateway_url(),
            "ca_file": self.ca_file(),
            "uaa_domain": self.inner.uaa.domain(),
            "tenants": self.inner.uaa.config().tenants.iter().map(|t| json!({"subdomain": t.subdomain, "zid": t.zid, "uaa": self.uaa_url(&t.subdomain)})).collect::<Vec<_>>(),
            "clients": self.inner.uaa.config().clients.iter().map(|c| json!({"client_id": c.client_id, "client_secret": c.client_secret})).collect::<Vec<_>>(),
            "users": self.inner.uaa.config().users.iter().map(|u| json!({"user_name": u.user_name, "password": u.password})).collect::<Vec<_>>(),
            "token_servers": self.inner.token_servers.lock().expect("token servers lock").values().map(|(t, _)| t.url()).collect::<Vec<_>>(),
            "components": self.components(),
            "destinations": self.inner.destination.destinations().iter().map(|e| (e.properties.name().to_string(), json!(e.properties.get("Authentication").unwrap_or("NoAuthentication")))).collect::<serde_json::Map<_, _>>(),
            "vcap_services": self.vcap_services(),
            "identity_providers": self.inner.providers.iter().map(|p| {
                let c = p.config();
                json!({"kind": c.kind, "issuer": c.issuer, "discovery": c.discovery_url(),
                       "clients": c.clients.iter().map(|k| {
                           let mut v = json!({"client_id": k.client_id});
                           if !k.client_secret.is_empty() {
                               v["client_secret"] = json!(k.client_secret);
                           }
                           if let Some((cert, key)) = self.client_credential(k) {
                               v["certificate"] = json!(cert);
                               v["key"] = json!(key);
                           }
                           v
                       }).collect::<Vec<_>>()})
            }).collect::<Vec<_>>(),
            "cloud_connector": {"locations": self.inner.connectivity.connectors().iter().map(|c| c.summary()).collect::<Vec<_>>()},
        })
    }
}

/// `NO_PROXY` of the local environment: loopback names and addresses.
pub const LOOPBACK_NO_PROXY: &str = "localhost,.localhost,127.0.0.1,::1";
