//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) over the SCRAM
//! credential store, with Kafka's per-user error codes: RESOURCE_NOT_FOUND (unknown user
//! or credential), UNSUPPORTED_SASL_MECHANISM, UNACCEPTABLE_CREDENTIAL (iterations
//! outside 4096..=16384, empty salt or name), DUPLICATE_RESOURCE (a user named twice).
//! Every change is audited before it is made, and persisted before it is answered.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;
use medulla_auth::audit::{AuditEvent, Category, Outcome};
use medulla_auth::credentials::{
    Change, CredentialError, ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, ScramMechanism,
};

use crate::broker::Broker;
use crate::session::Session;

fn s(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

/// Answers DescribeUserScramCredentials: the named users (all when none are named).
// authz: Describe on the cluster (the lead wires it).
pub fn describe(
    broker: &Broker,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let store = broker.sasl().credentials();
    let info = |mechanisms: Vec<(ScramMechanism, u32)>| {
        mechanisms
            .into_iter()
            .map(|(m, i)| {
                CredentialInfo::default()
                    .with_mechanism(m.type_code())
                    .with_iterations(i as i32)
            })
            .collect::<Vec<_>>()
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => store
            .list()
            .into_iter()
            .map(|(user, mechanisms)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(s(user))
                    .with_credential_infos(info(mechanisms))
            })
            .collect(),
        Some(users) => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for u in &users {
                *counts.entry(u.name.to_string()).or_default() += 1;
            }
            let mut seen = BTreeSet::new();
            users
                .iter()
                .filter(|u| seen.insert(u.name.to_string()))
                .map(|u| {
                    let name = u.name.to_string();
                    let result = DescribeUserScramCredentialsResult::default().with_user(s(&name));
                    if counts.get(&name).copied().unwrap_or(0) > 1 {
                        return result
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(s(format!(
                                "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                            ))));
                    }
                    match store.describe(&name) {
                        Some(m) => result.with_credential_infos(info(m)),
                        None => result
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(s(format!(
                                "Attempt to describe a user credential that does not exist: {name}"
                            )))),
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

type Refusal = (ResponseError, String);

/// Answers AlterUserScramCredentials.
// authz: Alter on the cluster (the lead wires it).
pub async fn alter(
    broker: &Broker,
    session: &Session,
    header: &RequestHeader,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Per user, in first-seen order: its changes, or why they are all refused.
    let mut order: Vec<String> = Vec::new();
    let mut per_user: BTreeMap<String, Result<Vec<(Change, String)>, Refusal>> = BTreeMap::new();
    let mut pairs: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut add = |user: String, mechanism: i8, change: Result<(Change, String), Refusal>| {
        if !per_user.contains_key(&user) {
            order.push(user.clone());
            per_user.insert(user.clone(), Ok(Vec::new()));
        }
        let duplicate = !pairs.insert((user.clone(), mechanism));
        let entry = per_user.entry(user).or_insert_with(|| Ok(Vec::new()));
        let Ok(changes) = entry else { return };
        match (duplicate, change) {
            (true, _) => {
                *entry = Err((
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".to_owned(),
                ))
            }
            (false, Err(refusal)) => *entry = Err(refusal),
            (false, Ok(c)) => changes.push(c),
        }
    };
    let unknown_mechanism = || {
        (
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".to_owned(),
        )
    };
    for d in request.deletions {
        let user = d.name.to_string();
        let change = if user.is_empty() {
            Err((
                ResponseError::UnacceptableCredential,
                "Username must not be empty".to_owned(),
            ))
        } else {
            match ScramMechanism::from_type_code(d.mechanism) {
                None => Err(unknown_mechanism()),
                Some(mechanism) => Ok((
                    Change::Delete {
                        user: user.clone(),
                        mechanism,
                    },
                    format!("delete {}", mechanism.name()),
                )),
            }
        };
        add(user, d.mechanism, change);
    }
    for u in request.upsertions {
        let user = u.name.to_string();
        let change = match ScramMechanism::from_type_code(u.mechanism) {
            None => Err(unknown_mechanism()),
            Some(mechanism) => {
                check_upsertion(&user, mechanism, u.iterations, &u.salt, &u.salted_password).map(
                    |credential| {
                        let detail = format!(
                            "upsert {} ({} iterations)",
                            mechanism.name(),
                            credential.iterations
                        );
                        (
                            Change::Upsert {
                                user: user.clone(),
                                credential,
                            },
                            detail,
                        )
                    },
                )
            }
        };
        add(user, u.mechanism, change);
    }

    // Audit what is about to change, then change it (one write for the request).
    let mut results: BTreeMap<String, (ResponseError, Option<String>)> = BTreeMap::new();
    let mut changes: Vec<(String, Change)> = Vec::new();
    for user in &order {
        match per_user.remove(user) {
            Some(Err((code, message))) => {
                results.insert(user.clone(), (code, Some(message)));
            }
            Some(Ok(list)) => {
                let detail = list
                    .iter()
                    .map(|(_, d)| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut event = AuditEvent::now(Category::Change, Outcome::Success);
                event.principal = session.principal.to_string();
                event.client = session.peer.to_string();
                event.source = format!("kafka:{}", session.listener);
                event.action = "AlterUserScramCredentials".to_owned();
                event.resource = format!("User:{user}");
                event.operation = "Alter".to_owned();
                event.request_id = format!(
                    "{}/{}",
                    header.client_id.as_deref().unwrap_or(""),
                    header.correlation_id
                );
                event.detail = detail;
                if let Err(e) = broker.audit(event).await {
                    results.insert(
                        user.clone(),
                        (ResponseError::UnknownServerError, Some(e.to_string())),
                    );
                    continue;
                }
                for (c, _) in list {
                    changes.push((user.clone(), c));
                }
            }
            None => {}
        }
    }
    let store = broker.sasl().credentials().clone();
    let (users, batch): (Vec<String>, Vec<Change>) = changes.into_iter().unzip();
    let applied = tokio::task::spawn_blocking(move || store.alter(batch))
        .await
        .unwrap_or_else(|e| {
            vec![Err(CredentialError::Storage {
                path: String::new(),
                reason: format!("credential task failed: {e}"),
            })]
        });
    for (i, user) in users.iter().enumerate() {
        let outcome = applied.get(i).map_or(
            Err((ResponseError::UnknownServerError, "not applied".to_owned())),
            |r| r.as_ref().map(|_| ()).map_err(refusal_of),
        );
        if let Err((code, message)) = outcome {
            // The user's first error wins.
            results.entry(user.clone()).or_insert((code, Some(message)));
        }
    }
    let results = order
        .into_iter()
        .map(|user| {
            let result = AlterUserScramCredentialsResult::default().with_user(s(&user));
            match results.remove(&user) {
                Some((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(message.map(s)),
                None => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn refusal_of(e: &CredentialError) -> Refusal {
    let code = match e {
        CredentialError::NotFound => ResponseError::ResourceNotFound,
        CredentialError::Unacceptable(_) => ResponseError::UnacceptableCredential,
        CredentialError::TooManyUsers => ResponseError::PolicyViolation,
        CredentialError::Storage { .. } => ResponseError::KafkaStorageError,
    };
    (code, e.to_string())
}

fn check_upsertion(
    user: &str,
    mechanism: ScramMechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<ScramCredential, Refusal> {
    let unacceptable = |m: String| (ResponseError::UnacceptableCredential, m);
    if iterations < ITERATIONS_MIN as i32 {
        return Err(unacceptable(format!(
            "Too few iterations: {iterations} (the minimum is {ITERATIONS_MIN})"
        )));
    }
    if iterations > ITERATIONS_MAX as i32 {
        return Err(unacceptable(format!(
            "Too many iterations: {iterations} (the maximum is {ITERATIONS_MAX})"
        )));
    }
    medulla_auth::credentials::check_upsert(user, salt, iterations as u32)
        .map_err(|e| refusal_of(&e))?;
    if salted_password.len() != mechanism.hash_bytes() {
        return Err(unacceptable(format!(
            "A {} salted password is {} bytes",
            mechanism.name(),
            mechanism.hash_bytes()
        )));
    }
    Ok(ScramCredential::from_salted_password(
        mechanism,
        salt.to_vec(),
        salted_password,
        iterations as u32,
    ))
}
