//! Request dispatch: one module per API family.
//!
//! A handler runs in two phases. The first runs in the connection's reader, in request
//! order, and does everything with side effects (appending, creating topics), so that
//! requests pipelined on one connection take effect in the order they were sent, as
//! Kafka guarantees. It may return a second phase ([`Reply::Later`]) for waiting that has
//! no side effects of its own — an fsync shared with other requests, a Fetch long poll —
//! which runs concurrently while the reader moves on. Responses are still written in
//! request order.

mod acls;
pub mod api_versions;
mod authorize;
mod configs;
mod coordinator;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod produce;
mod producers;
pub mod sasl;
mod scram;
mod topics;
mod txn;
pub mod versioning;

use std::future::Future;
use std::pin::Pin;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use crate::broker::Broker;
use crate::frame::FileParts;
use crate::session::Session;

/// A response still being computed.
pub type Pending = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;

/// A response body, and the segment file ranges its record placeholders stand for
/// (Fetch; see [`crate::frame::encode_response_chunked`]).
pub struct Response {
    /// The body.
    pub body: ResponseKind,
    /// The file ranges behind placeholders in `body` (empty for every other API).
    pub files: FileParts,
}

impl From<ResponseKind> for Response {
    fn from(body: ResponseKind) -> Response {
        Response {
            body,
            files: FileParts::default(),
        }
    }
}

/// What a request produced.
// Moved once per request; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// The response, ready.
    Now(ResponseKind),
    /// The response after waiting (concurrently with later requests).
    Later(Pending),
    /// No response at all (Produce with `acks=0`).
    None,
    /// No response, and close the connection: how Kafka tells an `acks=0` producer that
    /// its request failed (it has no response to read an error from).
    Close,
}

/// Runs the first phase of `body`.
pub async fn dispatch(
    broker: &Broker,
    session: &mut Session,
    header: &RequestHeader,
    api: ApiKey,
    body: RequestKind,
) -> Reply {
    let version = header.request_api_version;
    let access = crate::authz::Access::new(broker, session, header, api);
    let (body, post) = match authorize::before(access, version, body).await {
        authorize::Gate::Respond(r) => return Reply::Now(r),
        authorize::Gate::Close => return Reply::Close,
        authorize::Gate::Pass(body, post) => (body, post),
    };
    let peer = session.peer;
    let reply = match body {
        RequestKind::ApiVersions(r) => {
            Reply::Now(ResponseKind::ApiVersions(api_versions::handle(&r)))
        }
        RequestKind::Metadata(r) => Reply::Now(ResponseKind::Metadata(
            metadata::handle(broker, session, r, version).await,
        )),
        RequestKind::DescribeCluster(r) => Reply::Now(ResponseKind::DescribeCluster(
            metadata::describe_cluster(broker, session, &r),
        )),
        RequestKind::Produce(r) => produce::handle(broker, r, version).await,
        RequestKind::FindCoordinator(r) => Reply::Now(ResponseKind::FindCoordinator(
            coordinator::find_coordinator(broker, session, &r, version),
        )),
        RequestKind::OffsetCommit(r) => Reply::Now(ResponseKind::OffsetCommit(
            coordinator::offset_commit(broker, r, version).await,
        )),
        RequestKind::OffsetFetch(r) => Reply::Now(ResponseKind::OffsetFetch(
            coordinator::offset_fetch(broker, r, version),
        )),
        RequestKind::TxnOffsetCommit(r) => Reply::Now(ResponseKind::TxnOffsetCommit(
            coordinator::txn_offset_commit(broker, r).await,
        )),
        RequestKind::DescribeProducers(r) => Reply::Now(ResponseKind::DescribeProducers(
            producers::describe(broker, r),
        )),
        RequestKind::JoinGroup(r) => {
            let client_id = header.client_id.as_deref().unwrap_or("");
            groups::join(broker, r, version, peer, client_id).await
        }
        RequestKind::SyncGroup(r) => groups::sync(broker, r).await,
        RequestKind::Heartbeat(r) => {
            Reply::Now(ResponseKind::Heartbeat(groups::heartbeat(broker, r).await))
        }
        RequestKind::LeaveGroup(r) => Reply::Now(ResponseKind::LeaveGroup(
            groups::leave(broker, r, version).await,
        )),
        RequestKind::ListGroups(r) => {
            Reply::Now(ResponseKind::ListGroups(groups::list(broker, r).await))
        }
        RequestKind::DescribeGroups(r) => Reply::Now(ResponseKind::DescribeGroups(
            groups::describe(broker, r, version).await,
        )),
        RequestKind::DeleteGroups(r) => {
            Reply::Now(ResponseKind::DeleteGroups(groups::delete(broker, r).await))
        }
        RequestKind::OffsetDelete(r) => Reply::Now(ResponseKind::OffsetDelete(
            groups::delete_offsets(broker, r).await,
        )),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            let client_id = header.client_id.as_deref().unwrap_or("");
            Reply::Now(ResponseKind::ConsumerGroupHeartbeat(
                groups::consumer_heartbeat(broker, r, peer, client_id).await,
            ))
        }
        RequestKind::ConsumerGroupDescribe(r) => Reply::Now(ResponseKind::ConsumerGroupDescribe(
            groups::consumer_describe(broker, r).await,
        )),
        RequestKind::Fetch(r) => Reply::Later(Box::pin(fetch::handle(broker.clone(), r, version))),
        RequestKind::ListOffsets(r) => Reply::Now(ResponseKind::ListOffsets(
            list_offsets::handle(broker, r).await,
        )),
        RequestKind::CreateTopics(r) => Reply::Now(ResponseKind::CreateTopics(
            topics::create(broker, r, version).await,
        )),
        RequestKind::DeleteTopics(r) => Reply::Now(ResponseKind::DeleteTopics(
            topics::delete(broker, r, version).await,
        )),
        RequestKind::CreatePartitions(r) => Reply::Now(ResponseKind::CreatePartitions(
            topics::create_partitions(broker, r).await,
        )),
        RequestKind::DeleteRecords(r) => Reply::Now(ResponseKind::DeleteRecords(
            topics::delete_records(broker, r).await,
        )),
        RequestKind::DescribeConfigs(r) => Reply::Now(ResponseKind::DescribeConfigs(
            configs::describe(broker, r, version),
        )),
        RequestKind::AlterConfigs(r) => {
            Reply::Now(ResponseKind::AlterConfigs(configs::alter(broker, r).await))
        }
        RequestKind::IncrementalAlterConfigs(r) => Reply::Now(
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(broker, r).await),
        ),
        RequestKind::InitProducerId(r) => Reply::Now(ResponseKind::InitProducerId(
            txn::init_producer_id(broker, r, version).await,
        )),
        RequestKind::AddPartitionsToTxn(r) => Reply::Now(ResponseKind::AddPartitionsToTxn(
            txn::add_partitions_to_txn(broker, r, version).await,
        )),
        RequestKind::AddOffsetsToTxn(r) => Reply::Now(ResponseKind::AddOffsetsToTxn(
            txn::add_offsets_to_txn(broker, r, version).await,
        )),
        RequestKind::EndTxn(r) => {
            Reply::Now(ResponseKind::EndTxn(txn::end_txn(broker, r, version).await))
        }
        RequestKind::DescribeTransactions(r) => Reply::Now(ResponseKind::DescribeTransactions(
            txn::describe_transactions(broker, r).await,
        )),
        RequestKind::ListTransactions(r) => Reply::Now(ResponseKind::ListTransactions(
            txn::list_transactions(broker, r, version).await,
        )),
        RequestKind::SaslHandshake(r) => Reply::Now(ResponseKind::SaslHandshake(
            sasl::handshake(broker, session, header, r).await,
        )),
        RequestKind::SaslAuthenticate(r) => Reply::Now(ResponseKind::SaslAuthenticate(
            sasl::authenticate(broker, session, header, r, version).await,
        )),
        RequestKind::DescribeUserScramCredentials(r) => Reply::Now(
            ResponseKind::DescribeUserScramCredentials(scram::describe(broker, r)),
        ),
        RequestKind::AlterUserScramCredentials(r) => Reply::Now(
            ResponseKind::AlterUserScramCredentials(scram::alter(broker, session, header, r).await),
        ),
        RequestKind::CreateAcls(r) => Reply::Now(ResponseKind::CreateAcls(
            acls::create(broker, access, r).await,
        )),
        RequestKind::DescribeAcls(r) => Reply::Now(ResponseKind::DescribeAcls(
            acls::describe(broker, access, r).await,
        )),
        RequestKind::DeleteAcls(r) => Reply::Now(ResponseKind::DeleteAcls(
            acls::delete(broker, access, r).await,
        )),
        other => {
            // The decoder only lets through what `api_versions::SUPPORTED` lists, and every
            // entry there has an arm above; reaching this is a bug in this file.
            tracing::error!(
                ?api,
                "no handler for a served API: {:?}",
                std::mem::discriminant(&other)
            );
            Reply::None
        }
    };
    authorize::after(reply, post)
}

/// Runs blocking storage work (file creation, fsync) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> medulla_log::Result<T> + Send + 'static,
) -> medulla_log::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(medulla_log::LogError::Io(std::io::Error::other(format!(
            "storage task failed: {e}"
        )))),
    }
}
