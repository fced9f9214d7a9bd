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

/// One request a mock received, and how it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Order of arrival within the stack, from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Which mock: `uaa`, `token-server`, `destination`, `gateway`, …
    pub component: String,
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
        crate::http::parse_basic(self.header("authorization")?)
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

#[derive(Debug)]
struct Inner {
    entries: Mutex<std::collections::VecDeque<JournalEntry>>,
    /// Oldest entries are dropped beyond this many (None: keep everything).
    capacity: Option<usize>,
    next_seq: std::sync::atomic::AtomicU64,
    live: broadcast::Sender<JournalEntry>,
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
    /// A journal that keeps everything (tests, scenarios).
    pub fn new() -> Self {
        Self::with_capacity(None)
    }

    /// A journal that keeps the last `capacity` entries: a long-running
    /// `idprop up` under load must not grow without bound.
    pub fn with_capacity(capacity: Option<usize>) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                capacity,
                entries: Mutex::new(std::collections::VecDeque::new()),
                next_seq: std::sync::atomic::AtomicU64::new(1),
                live,
            }),
        }
    }

    /// Appends a finished entry, assigning its sequence number.
    pub fn record(&self, entry: JournalEntry) -> u64 {
        let seq = self.begin(entry);
        self.complete(seq, |_| {});
        seq
    }

    /// Appends an entry whose answer is still to come (status 0), so a
    /// request the client gave up on is in the journal all the same.
    pub fn begin(&self, mut entry: JournalEntry) -> u64 {
        entry.seq = self.inner.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seq = entry.seq;
        let mut entries = self.inner.entries.lock().expect("journal poisoned");
        entries.push_back(entry);
        if let Some(cap) = self.inner.capacity {
            while entries.len() > cap {
                entries.pop_front();
            }
        }
        seq
    }

    /// Completes entry `seq` (status, latency, note) and announces it on
    /// the live feed.
    pub fn complete(&self, seq: u64, f: impl FnOnce(&mut JournalEntry)) {
        let done = {
            let mut entries = self.inner.entries.lock().expect("journal poisoned");
            entries.iter_mut().rev().find(|e| e.seq == seq).map(|e| {
                f(e);
                e.clone()
            })
        };
        if let Some(e) = done {
            let _ = self.inner.live.send(e);
        }
    }

    /// Everything so far, in order of arrival.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.inner.entries.lock().expect("journal poisoned").iter().cloned().collect()
    }

    /// Entries of one component.
    pub fn of(&self, component: &str) -> Vec<JournalEntry> {
        self.filter(|e| e.component == component)
    }

    /// Entries addressed to one virtual host.
    pub fn for_host(&self, host: &str) -> Vec<JournalEntry> {
        self.filter(|e| e.host.eq_ignore_ascii_case(host))
    }

    pub fn filter(&self, f: impl Fn(&JournalEntry) -> bool) -> Vec<JournalEntry> {
        self.inner.entries.lock().expect("journal poisoned").iter().filter(|e| f(e)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.inner.entries.lock().expect("journal poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (sequence numbers keep counting).
    pub fn clear(&self) {
        self.inner.entries.lock().expect("journal poisoned").clear();
    }

    /// A live feed of new entries (for `idprop journal --follow` and logs).
    pub fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.inner.live.subscribe()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}
