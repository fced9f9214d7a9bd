//! Connect and read timeouts of the token request (rules `TO-1`..`TO-5`).

use std::time::Duration;

/// The default whenever a timeout is absent or unusable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// `tokenServiceURL.ConnectionTimeoutInSeconds` upper bound (`TO-1`).
pub const MAX_CONNECT_SECS: i64 = 60;
/// `tokenServiceURL.SocketReadTimeoutInSeconds` upper bound (`TO-3`).
pub const MAX_READ_SECS: i64 = 600;

pub const CONNECT_PROPERTY: &str = "tokenServiceURL.ConnectionTimeoutInSeconds";
pub const READ_PROPERTY: &str = "tokenServiceURL.SocketReadTimeoutInSeconds";

/// The timeouts a token request runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: DEFAULT_TIMEOUT, read: DEFAULT_TIMEOUT }
    }
}

/// What a timeout of `0` means (`TO-5`): the pages make 0 the minimum
/// allowed value without saying what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZeroTimeout {
    /// idprop's reading: the default 10 s, so every request stays bounded.
    Default,
    /// The other (Java's `setConnectTimeout(0)`): no timeout.
    Infinite,
}

/// How long "no timeout" is in practice: a day.
pub const NO_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

impl Timeouts {
    /// Reads both properties (`None` = absent).
    pub fn from_properties(connect: Option<&str>, read: Option<&str>) -> Self {
        Self::from_properties_with(connect, read, ZeroTimeout::Default)
    }

    /// [`Timeouts::from_properties`] with a reading of `0`.
    pub fn from_properties_with(connect: Option<&str>, read: Option<&str>, zero: ZeroTimeout) -> Self {
        let one = |v: Option<&str>, max| match (zero, v.map(str::trim)) {
            (ZeroTimeout::Infinite, Some("0")) => NO_TIMEOUT,
            _ => clamp(v, max),
        };
        Self { connect: one(connect, MAX_CONNECT_SECS), read: one(read, MAX_READ_SECS) }
    }
}

/// One timeout value:
///
/// - `TO-1`/`TO-3`: a whole number of seconds from 1 to `max` is used as is.
/// - `TO-2`/`TO-4`: above `max` → 10 s, *not* `max` ("if the value exceeds
///   the allowed number, the default value (10 seconds) is used").
/// - `TO-5` absent → 10 s.
/// - `TO-5` (ambiguous, our reading): negative, non-numeric (`"abc"`,
///   `"2.5"`, `""`) and `0` → 10 s. The documentation allows 0 as a minimum
///   but does not say what it means; to a Java client 0 means "wait
///   forever", which no caller of a token service can rely on. Falling back
///   to the default keeps every token request bounded. Surrounding
///   whitespace and a leading `+` are accepted, as Java's `Integer.parseInt`
///   accepts the `+`.
pub fn clamp(value: Option<&str>, max: i64) -> Duration {
    match value.map(str::trim).and_then(|v| v.parse::<i64>().ok()) {
        Some(s) if (1..=max).contains(&s) => Duration::from_secs(s as u64),
        _ => DEFAULT_TIMEOUT,
    }
}
