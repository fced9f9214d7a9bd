//! `builtin:<name>`: implementations compiled into the harness — the
//! reference, and the mutants — spoken to with the same messages, in-process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Driver, DriverError, Session, SessionEnd, SessionEnv};
use crate::reference::{Deviation, Reference};
use idprop_mocks::rules::Readings;

/// A builtin implementation by name: `reference`, `reference/alt` (the other
/// reading at every point the pages leave open) or `mutant/<name>`.
#[derive(Debug, Clone)]
pub struct Builtin {
    name: String,
    deviation: Option<Deviation>,
    readings: Readings,
}

impl Builtin {
    pub fn new(name: &str) -> Result<Self, String> {
        if name == "reference" {
            return Ok(Self { name: name.into(), deviation: None, readings: Readings::IDPROP });
        }
        if name == "reference/alt" {
            return Ok(Self { name: name.into(), deviation: None, readings: Readings::ALTERNATIVE });
        }
        if let Some(m) = name.strip_prefix("mutant/") {
            let d = Deviation::parse(m).ok_or_else(|| {
                format!(
                    "unknown mutant {m:?}; known: {}",
                    Deviation::ALL.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
                )
            })?;
            return Ok(Self { name: name.into(), deviation: Some(d), readings: Readings::IDPROP });
        }
        Err(format!("unknown builtin {name:?}: use builtin:reference, builtin:reference/alt or builtin:mutant/NAME"))
    }

    /// The implementation itself, reaching the network of `env` (`idprop
    /// adapter` serves it over stdin/stdout).
    pub fn implementation(&self, env: &SessionEnv) -> Result<Reference, String> {
        Reference::new(env, self.deviation, self.readings)
    }
}

#[async_trait]
impl Driver for Builtin {
    fn describe(&self) -> String {
        format!("builtin:{}", self.name)
    }

    async fn open(&self, env: &SessionEnv) -> Result<Box<dyn Session>, DriverError> {
        let imp = self.implementation(env).map_err(DriverError::Spawn)?;
        Ok(Box::new(BuiltinSession { imp: Arc::new(imp) }))
    }
}

struct BuiltinSession {
    imp: Arc<Reference>,
}

#[async_trait]
impl Session for BuiltinSession {
    async fn send(
        &mut self,
        requests: Vec<Value>,
        concurrent: bool,
        deadline: Duration,
    ) -> Vec<Result<Value, DriverError>> {
        let one = |r: Value| {
            let imp = self.imp.clone();
            async move {
                let id = crate::protocol::id_of(&r);
                tokio::time::timeout(deadline, async move { imp.handle(&r).await })
                    .await
                    .map_err(|_| DriverError::Deadline { id, seconds: deadline.as_secs_f64() })
            }
        };
        if concurrent {
            futures::future::join_all(requests.into_iter().map(one)).await
        } else {
            let mut out = Vec::new();
            for r in requests {
                out.push(one(r).await);
            }
            out
        }
    }

    async fn close(self: Box<Self>) -> SessionEnd {
        SessionEnd::default()
    }
}
