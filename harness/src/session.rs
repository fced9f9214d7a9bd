//! Opening a conversation with an implementation, the same way for
//! scenarios and properties: the session, `hello`, and whether it plays the
//! role asked for.

use std::time::Duration;

use idprop_mocks::Stack;

use crate::driver::{Driver, Session};
use crate::protocol::{hello, result_of, DriverError, Hello, NetworkInfo, SessionEnv};

/// What every message carries as `network` for an implementation tested
/// against `stack`.
pub fn network_of(stack: &Stack) -> NetworkInfo {
    NetworkInfo {
        proxy: stack.gateway_url(),
        ca_file: stack.ca_file().display().to_string(),
        no_proxy: crate::unreachable::NO_PROXY.into(),
    }
}

/// A session whose implementation said hello and plays the role.
pub struct Opened {
    pub session: Box<dyn Session>,
    pub hello: Hello,
}

/// Why no session could be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The implementation did not start.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// It started but `hello` failed; its stderr is kept.
    #[error("hello failed: {error}")]
    Hello { error: String, stderr: String },
    /// It does not play the role (the scenario or property is skipped).
    #[error("{} does not play the {role} role (it plays: {})", hello.name, hello.roles.join(", "))]
    RoleNotPlayed { role: String, hello: Hello, stderr: String },
}

/// Opens a session with `env`, says hello within `deadline`, and checks
/// that the implementation plays `role`.
pub async fn open(driver: &dyn Driver, env: &SessionEnv, role: &str, deadline: Duration) -> Result<Opened, OpenError> {
    let mut session = driver.open(env).await?;
    let h = hello(1, &env.network);
    let answer = session.send(vec![h.clone()], false, deadline).await.remove(0);
    let hello: Hello = match answer
        .and_then(|a| result_of(&h, &a))
        .map_err(|e| e.to_string())
        .and_then(|r| serde_json::from_value(r).map_err(|e| format!("hello answer: {e}")))
    {
        Ok(h) => h,
        Err(error) => {
            let stderr = session.close().await.stderr;
            return Err(OpenError::Hello { error, stderr });
        }
    };
    if !hello.roles.iter().any(|r| r == role) {
        let stderr = session.close().await.stderr;
        return Err(OpenError::RoleNotPlayed { role: role.to_string(), hello, stderr });
    }
    Ok(Opened { session, hello })
}
