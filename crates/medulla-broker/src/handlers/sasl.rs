//! SaslHandshake (v1) and SaslAuthenticate (v0–v2), and the gate that keeps a SASL
//! listener's connection to those (and ApiVersions) until it has authenticated.
//!
//! As Kafka: a refused mechanism is UNSUPPORTED_SASL_MECHANISM (33), failed credentials
//! SASL_AUTHENTICATION_FAILED (58) with a message, a SaslAuthenticate with no exchange
//! started ILLEGAL_SASL_STATE (34); after any of them the connection closes (after
//! `connection.failed.authentication.delay.ms`, growing per address). KIP-368: v1+
//! answers `session_lifetime_ms`; after the session expires, anything but SaslHandshake /
//! SaslAuthenticate closes the connection, and re-authentication must yield the same
//! principal with the same mechanism.
//!
//! SaslHandshake v0 (raw SASL tokens framed outside Kafka requests) is not served: every
//! client in use since Kafka 1.0 sends v1 then SaslAuthenticate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use medulla_auth::Principal;
use medulla_auth::audit::{AuditEvent, Category, Outcome};
use medulla_auth::sasl::{SaslError, Step};

use crate::broker::Broker;
use crate::session::{Exchange, Session};

/// Why a request may not be served on this connection: close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A request other than ApiVersions / SaslHandshake / SaslAuthenticate before
    /// authentication.
    NotAuthenticated,
    /// The KIP-368 session expired and the request is not a re-authentication.
    Expired,
}

/// Whether `api` may be served on `session` now.
pub fn gate(session: &Session, api: ApiKey, now: Instant) -> Result<(), Refusal> {
    if !session.protocol.is_sasl() {
        return Ok(());
    }
    let sasl_api = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
    if !session.sasl.authenticated {
        return if sasl_api || api == ApiKey::ApiVersions {
            Ok(())
        } else {
            Err(Refusal::NotAuthenticated)
        };
    }
    if !sasl_api && session.sasl.expires_at.is_some_and(|t| now >= t) {
        return Err(Refusal::Expired);
    }
    Ok(())
}

fn s(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

fn request_id(header: &RequestHeader) -> String {
    format!(
        "{}/{}",
        header.client_id.as_deref().unwrap_or(""),
        header.correlation_id
    )
}

/// Records an authentication attempt.
async fn audit(
    broker: &Broker,
    session: &Session,
    header: &RequestHeader,
    principal: &Principal,
    outcome: Outcome,
    detail: String,
) -> Result<(), medulla_auth::audit::AuditError> {
    let mut event = AuditEvent::now(Category::Authentication, outcome);
    event.principal = principal.to_string();
    event.client = session.peer.to_string();
    event.source = format!("kafka:{}", session.listener);
    event.action = session.sasl.mechanism.clone().unwrap_or_default();
    event.request_id = request_id(header);
    event.detail = detail;
    broker.audit(event).await
}

/// Marks the connection to close after this reply, after the failure back-off.
fn fail_and_close(broker: &Broker, session: &mut Session) {
    let delay = broker
        .sasl()
        .failures
        .failed(session.peer.ip(), Instant::now());
    session.sasl.exchange = None;
    session.sasl.close_after = Some(delay);
}

/// Answers SaslHandshake.
pub async fn handshake(
    broker: &Broker,
    session: &mut Session,
    header: &RequestHeader,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let sasl = broker.sasl().for_listener(&session.listener);
    let mechanisms: Vec<StrBytes> = sasl
        .map(|sasl| sasl.mechanisms().iter().map(|m| s(*m)).collect())
        .unwrap_or_default();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    let Some(sasl) = sasl.filter(|_| session.protocol.is_sasl()) else {
        // What Kafka answers on a listener without SASL.
        return response
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_mechanisms(Vec::new());
    };
    if session.sasl.exchange.is_some() {
        session.sasl.close_after = Some(Duration::ZERO);
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    let wanted = request.mechanism.to_string();
    if session.sasl.authenticated && session.sasl.mechanism.as_deref() != Some(wanted.as_str()) {
        // KIP-368: re-authentication keeps the mechanism.
        let detail = format!(
            "re-authentication with {wanted} after {}",
            session.sasl.mechanism.as_deref().unwrap_or("")
        );
        let _ = audit(
            broker,
            session,
            header,
            &session.principal.clone(),
            Outcome::Failure,
            detail,
        )
        .await;
        fail_and_close(broker, session);
        return response.with_error_code(ResponseError::IllegalSaslState.code());
    }
    match sasl.start(&wanted) {
        Some(exchange) => {
            session.sasl.mechanism = Some(wanted);
            session.sasl.exchange = Some(Exchange(Arc::new(Mutex::new(exchange))));
            response
        }
        None => {
            let mut shown = wanted.clone();
            shown.truncate(64);
            let detail = format!("unsupported SASL mechanism {shown:?}");
            let _ = audit(
                broker,
                session,
                header,
                &Principal::anonymous(),
                Outcome::Failure,
                detail,
            )
            .await;
            fail_and_close(broker, session);
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
        }
    }
}

/// Answers SaslAuthenticate.
pub async fn authenticate(
    broker: &Broker,
    session: &mut Session,
    header: &RequestHeader,
    request: SaslAuthenticateRequest,
    version: i16,
) -> SaslAuthenticateResponse {
    let error = |code: ResponseError, message: String| {
        SaslAuthenticateResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(s(message)))
    };
    if !session.protocol.is_sasl() {
        return error(
            ResponseError::IllegalSaslState,
            "SaslAuthenticate on a listener without SASL".to_owned(),
        );
    }
    let Some(exchange) = session.sasl.exchange.clone() else {
        session.sasl.close_after = Some(Duration::ZERO);
        return error(
            ResponseError::IllegalSaslState,
            "Unexpected SaslAuthenticate request: no SaslHandshake".to_owned(),
        );
    };
    // PLAIN and SCRAM derive keys (PBKDF2): keep that off the async workers.
    let input = request.auth_bytes;
    let (stepped, attempted) = tokio::task::spawn_blocking(move || {
        let mut server = exchange.0.lock().unwrap_or_else(|p| p.into_inner());
        let stepped = server.step(&input);
        (stepped, server.attempted_user().map(str::to_owned))
    })
    .await
    .unwrap_or_else(|e| {
        (
            Err(SaslError::Failed(format!(
                "authentication task failed: {e}"
            ))),
            None,
        )
    });

    let failure = match stepped {
        Ok(Step::Challenge(bytes)) => {
            return SaslAuthenticateResponse::default().with_auth_bytes(bytes.into());
        }
        Ok(Step::Done(done)) => {
            if session.sasl.authenticated && done.principal != session.principal {
                Err((
                    ResponseError::SaslAuthenticationFailed,
                    format!(
                        "Cannot change principals during re-authentication from {}: {}",
                        session.principal, done.principal
                    ),
                    done.principal.clone(),
                ))
            } else {
                Ok(done)
            }
        }
        Err(e) => {
            let code = match e {
                SaslError::Malformed(_) => ResponseError::IllegalSaslState,
                SaslError::Failed(_) | SaslError::TooLarge(_) => {
                    ResponseError::SaslAuthenticationFailed
                }
            };
            Err((code, e.to_string(), Principal::anonymous()))
        }
    };
    match failure {
        Ok(done) => {
            let now = Instant::now();
            let lifetime_ms = session_lifetime_ms(
                done.expires_at,
                broker.sasl().reauth_max_ms,
                SystemTime::now(),
            );
            let was = session.principal.clone();
            session.principal = done.principal.clone();
            let reauth = session.sasl.authenticated;
            let detail = if reauth {
                "re-authenticated".to_owned()
            } else {
                String::new()
            };
            if let Err(e) = audit(
                broker,
                session,
                header,
                &done.principal,
                Outcome::Success,
                detail,
            )
            .await
            {
                tracing::error!(error = %e, "authentication refused: audit unavailable");
                session.principal = if reauth { was } else { Principal::anonymous() };
                fail_and_close(broker, session);
                return error(
                    ResponseError::SaslAuthenticationFailed,
                    "Authentication failed: the audit trail is unavailable".to_owned(),
                );
            }
            session.sasl.authenticated = true;
            session.sasl.exchange = None;
            session.sasl.expires_at =
                lifetime_ms.map(|ms| now + Duration::from_millis(ms.max(0) as u64));
            let mut response =
                SaslAuthenticateResponse::default().with_auth_bytes(done.response.into());
            if version >= 1 {
                response = response.with_session_lifetime_ms(lifetime_ms.unwrap_or(0));
            }
            response
        }
        Err((code, message, principal)) => {
            tracing::info!(peer = %session.peer, mechanism = session.sasl.mechanism.as_deref().unwrap_or(""), reason = %message, "SASL authentication failed");
            // The audit names the user the client claimed (never its secret), so
            // repeated failures against one account show.
            let detail = match &attempted {
                Some(user) => {
                    let mut user = user.clone();
                    user.truncate(256);
                    format!("attempted user {user:?}: {message}")
                }
                None => message.clone(),
            };
            // The failure is refused either way; an audit error only adds a log line.
            if let Err(e) = audit(
                broker,
                session,
                header,
                &principal,
                Outcome::Failure,
                detail,
            )
            .await
            {
                tracing::error!(error = %e, "cannot audit a failed authentication");
            }
            fail_and_close(broker, session);
            error(code, message)
        }
    }
}

/// KIP-368's session lifetime: the earlier of the credential's expiry and
/// `connections.max.reauth.ms` (when positive); `None` when neither applies.
pub fn session_lifetime_ms(
    expires_at: Option<SystemTime>,
    reauth_max_ms: u64,
    now: SystemTime,
) -> Option<i64> {
    let credential_ms = expires_at.map(|t| match t.duration_since(now) {
        Ok(left) => i64::try_from(left.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    });
    let max_ms = (reauth_max_ms > 0).then(|| i64::try_from(reauth_max_ms).unwrap_or(i64::MAX));
    match (credential_ms, max_ms) {
        (None, None) => None,
        (Some(c), None) => Some(c),
        (None, Some(m)) => Some(m),
        (Some(c), Some(m)) => Some(c.min(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SecurityProtocol;

    #[test]
    fn lifetimes_follow_kip_368() {
        let now = SystemTime::now();
        let in_10s = Some(now + Duration::from_secs(10));
        assert_eq!(session_lifetime_ms(None, 0, now), None);
        assert_eq!(session_lifetime_ms(None, 5000, now), Some(5000));
        assert_eq!(session_lifetime_ms(in_10s, 0, now), Some(10_000));
        assert_eq!(session_lifetime_ms(in_10s, 5000, now), Some(5000));
        assert_eq!(session_lifetime_ms(in_10s, 60_000, now), Some(10_000));
        let past = Some(now - Duration::from_secs(1));
        assert_eq!(session_lifetime_ms(past, 0, now), Some(0));
    }

    #[test]
    fn the_gate() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let plain = Session::new(peer, Arc::from("PLAINTEXT"), SecurityProtocol::Plaintext);
        let now = Instant::now();
        assert!(gate(&plain, ApiKey::Produce, now).is_ok());
        let mut sasl = Session::new(
            peer,
            Arc::from("SASL_PLAINTEXT"),
            SecurityProtocol::SaslPlaintext,
        );
        for api in [
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
        ] {
            assert!(gate(&sasl, api, now).is_ok());
        }
        assert_eq!(
            gate(&sasl, ApiKey::Metadata, now),
            Err(Refusal::NotAuthenticated)
        );
        sasl.sasl.authenticated = true;
        sasl.sasl.expires_at = Some(now + Duration::from_secs(1));
        assert!(gate(&sasl, ApiKey::Metadata, now).is_ok());
        let later = now + Duration::from_secs(2);
        assert_eq!(gate(&sasl, ApiKey::Metadata, later), Err(Refusal::Expired));
        assert!(gate(&sasl, ApiKey::SaslHandshake, later).is_ok());
    }
}
