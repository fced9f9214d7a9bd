//! `http:<url>`: every request POSTed as JSON; `reset` at every scenario start.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Driver, DriverError, Session, SessionEnd, SessionEnv};
use crate::protocol::{excerpt, id_of, reset};

#[derive(Debug, Clone)]
pub struct Http {
    url: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(url: &str) -> Result<Self, String> {
        url::Url::parse(url).map_err(|e| format!("http: bad URL {url:?}: {e}"))?;
        let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        Ok(Self { url: url.to_string(), client })
    }
}

#[async_trait]
impl Driver for Http {
    fn describe(&self) -> String {
        format!("http:{}", self.url)
    }

    async fn open(&self, _env: &SessionEnv) -> Result<Box<dyn Session>, DriverError> {
        let mut s = HttpSession { url: self.url.clone(), client: self.client.clone() };
        match s.post(reset(), Duration::from_secs(10)).await {
            Ok(_) => Ok(Box::new(s)),
            Err(e) => Err(DriverError::Spawn(format!("reset failed: {e}"))),
        }
    }
}

struct HttpSession {
    url: String,
    client: reqwest::Client,
}

impl HttpSession {
    async fn post(&mut self, request: Value, deadline: Duration) -> Result<Value, DriverError> {
        post(&self.client, &self.url, request, deadline).await
    }
}

async fn post(client: &reqwest::Client, url: &str, request: Value, deadline: Duration) -> Result<Value, DriverError> {
    let want = id_of(&request);
    let resp = client.post(url).json(&request).timeout(deadline).send().await.map_err(|e| {
        if e.is_timeout() {
            DriverError::Deadline { id: want, seconds: deadline.as_secs_f64() }
        } else {
            DriverError::Crashed(format!("POST {url} failed: {e}"))
        }
    })?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| DriverError::Crashed(format!("reading the answer: {e}")))?;
    let protocol = DriverError::Protocol;
    if !status.is_success() {
        return Err(protocol(format!("adapter answered HTTP {status}: {}", excerpt(&text))));
    }
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| protocol(format!("adapter answer is not JSON ({e}): {}", excerpt(&text))))?;
    match v.get("id").and_then(Value::as_u64) {
        Some(id) if id == want => Ok(v),
        Some(id) => Err(protocol(format!("adapter answered id {id} to request id {want}"))),
        None => Err(protocol(format!("adapter answer has no integer id: {}", excerpt(&text)))),
    }
}

#[async_trait]
impl Session for HttpSession {
    async fn send(
        &mut self,
        requests: Vec<Value>,
        concurrent: bool,
        deadline: Duration,
    ) -> Vec<Result<Value, DriverError>> {
        if concurrent {
            let c = self.client.clone();
            let u = self.url.clone();
            futures::future::join_all(requests.into_iter().map(|r| {
                let (c, u) = (c.clone(), u.clone());
                async move { post(&c, &u, r, deadline).await }
            }))
            .await
        } else {
            let mut out = Vec::new();
            for r in requests {
                out.push(self.post(r, deadline).await);
            }
            out
        }
    }

    async fn close(self: Box<Self>) -> SessionEnd {
        SessionEnd::default()
    }
}
