//! The journal: what every mock observed.
//!
//! The harness judges implementations by what reached the mocks, not by what
//! the implementation says it did, so every mock records every request here,
//! before it answers. One journal per stack; cheap to clone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The subject of a client certificate presented over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertInfo {
    /// RFC 4514 string of the subject DN.
    pub subject: String,
    /// The subject's common name, when it has one.
    pub cn: Option<String>,
    /// RFC 4514 string of the issuer DN.
    pub issuer: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
}

/// Which mock saw a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// The mock UAA (every tenant).
    Uaa,
    /// A scriptable token server.
    TokenServer,
    /// The Destination service.
    Destination,
    /// The Connectivity proxy (and its Cloud Connectors).
    ConnectivityProxy,
    /// The on-premise system behind the Cloud Connector.
    Backend,
    /// The Internet API (`api.example.test`).
    Api,
    /// The application of seed 000 (`app.example.test`), which validates
    /// its callers' tokens.
    App,
    /// An identity provider (IAS tenant or OIDC issuer).
    IdentityProvider,
    /// The gateway itself (unknown hosts).
    Gateway,
    /// A host served by the user's server ([`Stack::route_to`](crate::Stack::route_to)).
    #[serde(untagged)]
    Other(String),
}

impl Component {
    /// The name the journal, the page and scenarios use.
    pub fn as_str(&self) -> &str {
        match self {
            Component::Uaa => "uaa",
            Component::TokenServer => "token-server",
            Component::Destination => "destination",
            Component::ConnectivityProxy => "connectivity-proxy",
            Component::Backend => "backend",
            Component::Api => "api",
            Component::App => "app",
            Component::IdentityProvider => "identity-provider",
            Component::Gateway => "gateway",
            Component::Other(s) => s,
        }
    }
}

impl From<&str> for Component {
    /// The component of that name (another name is [`Component::Other`]).
    fn from(name: &str) -> Self {
        match name {
            "uaa" => Component::Uaa,
            "token-server" => Component::TokenServer,
            "destination" => Component::Destination,
            "connectivity-proxy" => Component::ConnectivityProxy,
            "backend" => Component::Backend,
            "api" => Component::Api,
            "app" => Component::App,
            "identity-provider" => Component::IdentityProvider,
            "gateway" => Component::Gateway,
            other => Component::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Component {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Component {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One request a mock received, and how it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Order of arrival within the stack, from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Which mock saw it.
    pub component: Component,
    /// Virtual host the request was addressed to (no port).
    pub host: String,
    /// Whether the request arrived over TLS.
    pub tls: bool,
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Decoded `application/x-www-form-urlencoded` body fields, in order.
    pub form: Vec<(String, String)>,
    /// The body when it is not a form (lossy UTF-8, capped at 64 KiB).
    pub body: Option<String>,
    /// The TLS client certificate of the connection.
    pub client_cert: Option<ClientCertInfo>,
    /// The certificate of an `SSL_CLIENT_CERT` header (what a Cloud
    /// Connector propagates to a backend), when one was sent and parses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_client_cert: Option<ClientCertInfo>,
    /// Status sent; 0 when the connection was closed without an answer.
    pub status: u16,
    pub latency_ms: u64,
    /// A short note from the mock (why it refused, which rule it applied).
    pub note: Option<String>,
}

impl JournalEntry {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// First value of form field `name`.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// First value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The `(user, password)` of an `Authorization: Basic` header.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        crate::authorization::parse_basic(self.header("authorization")?)
    }

    /// One line for logs: `200 POST mytenant.authentication…/oauth/token (uaa, 3 ms)`.
    pub fn one_line(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let mut s = format!(
            "{:>3} {} {}://{}{} ({}, {} ms)",
            self.status, self.method, scheme, self.host, self.path, self.component, self.latency_ms
        );
        if let Some(c) = &self.client_cert {
            s.push_str(&format!(" cert[{}]", c.subject));
        }
        if let Some(c) = &self.ssl_client_cert {
            s.push_str(&format!(" SSL_CLIENT_CERT[{}]", c.subject));
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" — {n}"));
        }
        s
    }
}

/// The journal's default byte budget (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Longest header, form, query or note value kept whole; longer ones are
/// cut with a marker saying how much was left out.
pub const MAX_VALUE_BYTES: usize = 32 * 1024;

/// Cuts `v` to [`MAX_VALUE_BYTES`] (on a character boundary) with a marker.
fn cap(v: &mut String) {
    if v.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        let cut = v.len() - end;
        // A fresh string: truncating keeps the whole allocation alive.
        *v = format!("{}…[idprop: {cut} more bytes not journalled]", &v[..end]);
    }
}

impl JournalEntry {
    /// Caps every value (`MAX_VALUE_BYTES`; the body is capped where it is read).
    fn capped(mut self) -> Self {
        for (_, v) in self.headers.iter_mut().chain(self.form.iter_mut()).chain(self.query.iter_mut()) {
            cap(v);
        }
        if let Some(n) = &mut self.note {
            cap(n);
        }
        cap(&mut self.path);
        self
    }

    /// Bytes this entry holds, roughly (what the budget counts).
    fn weight(&self) -> usize {
        let pairs = |v: &[(String, String)]| v.iter().map(|(k, v)| k.len() + v.len() + 16).sum::<usize>();
        256 + self.component.as_str().len()
            + self.host.len()
            + self.method.len()
            + self.path.len()
            + pairs(&self.query)
            + pairs(&self.headers)
            + pairs(&self.form)
            + self.body.as_ref().map_or(0, String::len)
            + self.note.as_ref().map_or(0, String::len)
            + if self.client_cert.is_some() { 256 } else { 0 }
            + if self.ssl_client_cert.is_some() { 256 } else { 0 }
    }
}

#[derive(Debug, Default)]
struct Store {
    entries: std::collections::VecDeque<(JournalEntry, usize)>,
    bytes: usize,
    /// Entries dropped to stay within the limits, since the start.
    evicted: u64,
}

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    /// Oldest entries are dropped beyond this many (None: keep everything).
    capacity: Option<usize>,
    /// … and beyond this many bytes (None: no byte budget).
    max_bytes: Option<usize>,
    next_seq: std::sync::atomic::AtomicU64,
    live: broadcast::Sender<JournalEntry>,
}

/// How full the journal is (`GET /__idprop/journal/stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStats {
    pub entries: usize,
    pub bytes: usize,
    pub max_bytes: Option<usize>,
    pub capacity: Option<usize>,
    /// Entries dropped (oldest first) to stay within the limits.
    pub evicted: u64,
}

/// Shared, append-only record of requests; cleared between scenarios.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl Default for Journal {
    fn default() -> Self {
        Self::new()
    }
}

impl Journal {
    /// A journal within the default byte budget, whatever the count.
    pub fn new() -> Self {
        Self::with_limits(None, Some(DEFAULT_MAX_BYTES))
    }

    /// A journal that keeps the last `capacity` entries within the default
    /// byte budget.
    pub fn with_capacity(capacity: Option<usize>) -> Self {
        Self::with_limits(capacity, Some(DEFAULT_MAX_BYTES))
    }

    /// A journal that keeps at most `capacity` entries and `max_bytes`
    /// bytes (oldest dropped first; the newest entry is always kept): a
    /// long-running `idprop up` under load stays bounded in memory.
    pub fn with_limits(capacity: Option<usize>, max_bytes: Option<usize>) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                capacity,
                max_bytes,
                store: Mutex::new(Store::default()),
                next_seq: std::sync::atomic::AtomicU64::new(1),
                live,
            }),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.store.lock().expect("journal poisoned")
    }

    /// Drops the oldest entries beyond the limits (never the newest).
    fn evict(&self, store: &mut Store) {
        while store.entries.len() > 1
            && (self.inner.capacity.is_some_and(|c| store.entries.len() > c)
                || self.inner.max_bytes.is_some_and(|m| store.bytes > m))
        {
            if let Some((_, w)) = store.entries.pop_front() {
                store.bytes -= w;
                store.evicted += 1;
            }
        }
    }

    /// The sequence number of the newest entry (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.store().entries.back().map_or(0, |(e, _)| e.seq)
    }

    /// How full the journal is.
    pub fn stats(&self) -> JournalStats {
        let s = self.store();
        JournalStats {
            entries: s.entries.len(),
            bytes: s.bytes,
            max_bytes: self.inner.max_bytes,
            capacity: self.inner.capacity,
            evicted: s.evicted,
        }
    }

    /// Up to `limit` entries after sequence number `since`, in order: a
    /// page of a long journal, without copying the rest.
    pub fn page(&self, since: u64, limit: usize) -> Vec<JournalEntry> {
        let s = self.store();
        let start = s.entries.partition_point(|(e, _)| e.seq <= since);
        s.entries.iter().skip(start).take(limit).map(|(e, _)| e.clone()).collect()
    }

    /// Appends a finished entry, assigning its sequence number.
    pub fn record(&self, entry: JournalEntry) -> u64 {
        let seq = self.begin(entry);
        self.complete(seq, |_| {});
        seq
    }

    /// Appends an entry whose answer is still to come (status 0), so a
    /// request the client gave up on is in the journal all the same.
    pub fn begin(&self, entry: JournalEntry) -> u64 {
        let mut entry = entry.capped();
        let weight = entry.weight();
        let mut store = self.store();
        // Numbered under the lock, so entries stay in order of their numbers.
        entry.seq = self.inner.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seq = entry.seq;
        store.entries.push_back((entry, weight));
        store.bytes += weight;
        self.evict(&mut store);
        seq
    }

    /// Completes entry `seq` (status, latency, note) and announces it on
    /// the live feed.
    pub fn complete(&self, seq: u64, f: impl FnOnce(&mut JournalEntry)) {
        let done = {
            let mut store = self.store();
            let listening = self.inner.live.receiver_count() > 0;
            let found = store.entries.iter_mut().rev().find(|(e, _)| e.seq == seq).map(|(e, w)| {
                f(e);
                if let Some(n) = &mut e.note {
                    cap(n);
                }
                let old = *w;
                *w = e.weight();
                // A copy only for a live listener (the page, `--follow`).
                (listening.then(|| e.clone()), old, *w)
            });
            found.and_then(|(e, old, new)| {
                store.bytes = store.bytes - old + new;
                e
            })
        };
        if let Some(e) = done {
            let _ = self.inner.live.send(e);
        }
    }

    /// Everything so far, in order of arrival.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.store().entries.iter().map(|(e, _)| e.clone()).collect()
    }

    /// Entries of one component.
    pub fn of(&self, component: &str) -> Vec<JournalEntry> {
        self.filter(|e| e.component.as_str() == component)
    }

    /// Entries addressed to one virtual host.
    pub fn for_host(&self, host: &str) -> Vec<JournalEntry> {
        self.filter(|e| e.host.eq_ignore_ascii_case(host))
    }

    pub fn filter(&self, f: impl Fn(&JournalEntry) -> bool) -> Vec<JournalEntry> {
        self.store().entries.iter().filter(|(e, _)| f(e)).map(|(e, _)| e.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.store().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (sequence numbers keep counting).
    pub fn clear(&self) {
        let mut s = self.store();
        s.entries.clear();
        s.bytes = 0;
    }

    /// A live feed of new entries (for `idprop journal --follow` and logs).
    pub fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.inner.live.subscribe()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(form_value: String) -> JournalEntry {
        JournalEntry {
            seq: 0,
            time_ms: 0,
            component: "t".into(),
            host: "h".into(),
            tls: false,
            method: "POST".into(),
            path: "/".into(),
            query: vec![],
            headers: vec![],
            form: vec![("padding".into(), form_value)],
            body: None,
            client_cert: None,
            ssl_client_cert: None,
            status: 0,
            latency_ms: 0,
            note: None,
        }
    }

    /// A cut value gives its memory back (truncating a `String` would keep
    /// the whole allocation: 1,000 large forms once held 900 MB).
    #[test]
    fn cut_values_release_their_memory_and_the_budget_holds() {
        let j = Journal::with_limits(None, Some(256 * 1024));
        for _ in 0..50 {
            j.record(entry("é".repeat(300 * 1024)));
        }
        let s = j.stats();
        assert!(s.bytes <= 256 * 1024 && s.evicted > 0, "{s:?}");
        let kept = &j.entries()[0].form[0].1;
        assert!(kept.capacity() < MAX_VALUE_BYTES + 128, "{}", kept.capacity());
        assert!(kept.ends_with("more bytes not journalled]"));
        // The newest entry is kept even when it alone is over the budget.
        let tiny = Journal::with_limits(None, Some(1));
        tiny.record(entry("x".into()));
        tiny.record(entry("y".into()));
        assert_eq!(tiny.entries().len(), 1);
        assert_eq!(tiny.entries()[0].form[0].1, "y");
    }
}
