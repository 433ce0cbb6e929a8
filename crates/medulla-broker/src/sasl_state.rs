//! The broker's SASL state shared by every connection: the mechanisms and credential
//! store ([`Sasl`]), and the per-address back-off after failed authentications.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medulla_auth::credentials::CredentialStore;
use medulla_auth::jwt::JwtValidator;
use medulla_auth::sasl::Sasl;

use crate::config::BrokerConfig;

/// The longest delay a failed authentication is answered after.
pub const FAILED_AUTH_DELAY_MAX: Duration = Duration::from_secs(5);
/// An address with no failure for this long starts again from the base delay.
pub const FAILED_AUTH_QUIET: Duration = Duration::from_secs(60);
/// Most addresses whose failures are remembered; when full, quiet ones are forgotten
/// first, and a new address beyond that gets the longest delay.
pub const FAILED_AUTH_ADDRESSES_MAX: usize = 10_000;

/// Per-address failure counts, growing the close delay: the base, doubled per failure
/// within [`FAILED_AUTH_QUIET`] of the previous one, up to [`FAILED_AUTH_DELAY_MAX`].
#[derive(Debug)]
pub struct FailureDelays {
    base: Duration,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureDelays {
    /// Delays starting at `base` (0 disables them, as in Kafka).
    pub fn new(base: Duration) -> FailureDelays {
        FailureDelays {
            base,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure from `addr` at `now` and returns how long to wait before
    /// answering it and closing the connection.
    pub fn failed(&self, addr: IpAddr, now: Instant) -> Duration {
        if self.base.is_zero() {
            return Duration::ZERO;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.contains_key(&addr) && seen.len() >= FAILED_AUTH_ADDRESSES_MAX {
            seen.retain(|_, (_, last)| now.duration_since(*last) < FAILED_AUTH_QUIET);
            if seen.len() >= FAILED_AUTH_ADDRESSES_MAX {
                return FAILED_AUTH_DELAY_MAX;
            }
        }
        let entry = seen.entry(addr).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILED_AUTH_QUIET {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = entry.0.saturating_sub(1).min(16);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(FAILED_AUTH_DELAY_MAX.max(self.base))
    }
}

/// What SASL connections share.
pub struct SaslContext {
    /// Each listener's mechanisms and what they check against (one credential store).
    by_listener: HashMap<String, Sasl>,
    /// The SCRAM credentials, shared by every listener.
    credentials: Arc<CredentialStore>,
    /// The failed-authentication back-off.
    pub failures: FailureDelays,
    /// `connections.max.reauth.ms` (0: none).
    pub reauth_max_ms: u64,
}

impl SaslContext {
    /// Opens the credential store in the data directory and reads the JWKS file, from
    /// the configuration.
    pub fn open(config: &BrokerConfig) -> Result<SaslContext, String> {
        let credentials =
            Arc::new(CredentialStore::open(&config.data_dir).map_err(|e| e.to_string())?);
        // The broker-wide keys (JWKS, re-authentication, back-off) are the same in every
        // listener's settings.
        let common = config.sasl.values().next();
        let jwt = match common.and_then(|c| c.jwt.as_ref()) {
            Some(c) => Some(Arc::new(JwtValidator::new(c.clone())?)),
            None => None,
        };
        let mut by_listener = HashMap::new();
        for (name, settings) in &config.sasl {
            let sasl = Sasl::new(
                &settings.enabled_mechanisms,
                credentials.clone(),
                settings.plain_users.0.clone(),
                jwt.clone(),
            )?;
            by_listener.insert(name.clone(), sasl);
        }
        Ok(SaslContext {
            by_listener,
            credentials,
            failures: FailureDelays::new(Duration::from_millis(
                common.map_or(100, |c| c.failed_auth_delay_ms),
            )),
            reauth_max_ms: common.map_or(0, |c| c.reauth_max_ms),
        })
    }

    /// The mechanisms of listener `name` (none for a listener the config does not
    /// know, which cannot happen for a bound one).
    pub fn for_listener(&self, name: &str) -> Option<&Sasl> {
        self.by_listener.get(name)
    }

    /// The SCRAM credential store.
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_and_reset_after_a_quiet_minute() {
        let d = FailureDelays::new(Duration::from_millis(100));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t = Instant::now();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(d.failed(a, t)), 100);
        assert_eq!(ms(d.failed(a, t)), 200);
        assert_eq!(ms(d.failed(a, t)), 400);
        assert_eq!(ms(d.failed(b, t)), 100);
        for _ in 0..20 {
            d.failed(a, t);
        }
        assert_eq!(d.failed(a, t), FAILED_AUTH_DELAY_MAX);
        assert_eq!(ms(d.failed(a, t + FAILED_AUTH_QUIET)), 100);
        assert_eq!(
            FailureDelays::new(Duration::ZERO).failed(a, t),
            Duration::ZERO
        );
    }

    #[test]
    fn the_address_map_is_bounded() {
        let d = FailureDelays::new(Duration::from_millis(1));
        let t = Instant::now();
        for i in 0..FAILED_AUTH_ADDRESSES_MAX as u32 {
            d.failed(IpAddr::from(i.to_be_bytes()), t);
        }
        let extra: IpAddr = "255.255.255.255".parse().unwrap();
        assert_eq!(d.failed(extra, t), FAILED_AUTH_DELAY_MAX);
        // Once the others are quiet, they are forgotten and room is made.
        assert_eq!(d.failed(extra, t + FAILED_AUTH_QUIET).as_millis(), 1);
    }
}
