//! Protocol-level guarantees over raw sockets: pipelined requests are answered in order,
//! `max.connections` bounds connections, the advertised address is the one given, and
//! retention runs on a live broker.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{Medulla, cli, read_frame, request_frame, wait_for};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, MetadataResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use medulla::admin::Client;

#[test]
fn pipelined_requests_are_answered_in_request_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let mut s = TcpStream::connect(&broker.addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    // 200 requests of mixed kinds in one write, before reading anything: more than the
    // default in-flight limit (64), so the broker must also push back without losing any.
    let mut batch = Vec::new();
    for id in 0..200 {
        if id % 3 == 0 {
            let topic = MetadataRequestTopic::default().with_name(Some(TopicName(
                StrBytes::from_string(format!("pipe-{}", id % 5)),
            )));
            batch.extend(request_frame(
                ApiKey::Metadata,
                12,
                id,
                &MetadataRequest::default().with_topics(Some(vec![topic])),
            ));
        } else {
            batch.extend(request_frame(
                ApiKey::ApiVersions,
                3,
                id,
                &ApiVersionsRequest::default(),
            ));
        }
    }
    s.write_all(&batch).unwrap();
    for id in 0..200 {
        let mut body = read_frame(&mut s).unwrap();
        let (api, version) = if id % 3 == 0 {
            (ApiKey::Metadata, 12)
        } else {
            (ApiKey::ApiVersions, 3)
        };
        let header =
            ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, id, "responses out of order");
        if api == ApiKey::Metadata {
            let md = MetadataResponse::decode(&mut body, version).unwrap();
            assert_eq!(md.topics.len(), 1);
        }
    }
}

#[test]
fn max_connections_bounds_the_connections_served() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &["--override", "max.connections=2"]);
    let ask = |s: &mut TcpStream| -> std::io::Result<()> {
        s.write_all(&request_frame(
            ApiKey::ApiVersions,
            3,
            1,
            &ApiVersionsRequest::default(),
        ))?;
        read_frame(s).map(|_| ())
    };
    let mut a = TcpStream::connect(&broker.addr).unwrap();
    let mut b = TcpStream::connect(&broker.addr).unwrap();
    ask(&mut a).unwrap();
    ask(&mut b).unwrap();
    // The third is accepted by the OS but not served while two are open.
    let mut c = TcpStream::connect(&broker.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        ask(&mut c).is_err(),
        "a third connection was served with max.connections=2"
    );
    // Once one closes, the waiting one is served.
    drop(a);
    c.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let mut body = read_frame(&mut c).expect("served after a slot freed");
    assert_eq!(
        ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
        1
    );
    ask(&mut b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advertised_address_is_the_one_given() {
    let dir = tempfile::tempdir().unwrap();
    // By default: the bound address, never `localhost`.
    let broker = Medulla::start(dir.path(), &[]);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    let md = c
        .send(MetadataRequest::default().with_topics(Some(vec![])))
        .await
        .unwrap();
    let (host, port) = broker.addr.rsplit_once(':').unwrap();
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].host.as_str(), host);
    assert_eq!(md.brokers[0].port.to_string(), port);
    drop(c);
    assert!(broker.terminate().success());

    let broker = Medulla::start(
        dir.path(),
        &["--advertise", "medulla.hospital.example:19092"],
    );
    let mut c = Client::connect(&broker.addr).await.unwrap();
    let md: MetadataResponse = c
        .send(MetadataRequest::default().with_topics(Some(vec![])))
        .await
        .unwrap();
    assert_eq!(md.brokers[0].host.as_str(), "medulla.hospital.example");
    assert_eq!(md.brokers[0].port, 19092);
}

#[test]
fn retention_deletes_old_segments_on_a_live_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(
        dir.path(),
        &["--override", "log.retention.check.interval.ms=100"],
    );
    let b = broker.addr.as_str();
    // Small segments (Kafka's test-only internal.segment.bytes) and 4 KiB of retention.
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        "vitals",
        "--partitions",
        "1",
        "--config",
        "internal.segment.bytes=2048",
        "--config",
        "retention.bytes=4096",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    let producer: rdkafka::producer::BaseProducer = common::client_config(b)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    // One batch per record: 30 batches of ~370 bytes make about five 2 KiB segments.
    for i in 0..30 {
        let payload = format!("heart-rate {i} ").repeat(20);
        producer
            .send(
                rdkafka::producer::BaseRecord::to("vitals")
                    .key("bed-7")
                    .payload(&payload),
            )
            .unwrap();
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
    }
    // The retention task advances the log start offset by deleting whole segments.
    let consumer: rdkafka::consumer::BaseConsumer = common::client_config(b)
        .set("group.id", "unused")
        .create()
        .unwrap();
    let (low, high) = wait_for("retention to delete segments", || {
        let (low, high) = rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            "vitals",
            0,
            Duration::from_secs(10),
        )
        .ok()?;
        (low > 0).then_some((low, high))
    });
    assert_eq!(high, 30);
    assert!(low < 30, "the active segment is never deleted");
}

#[test]
fn queued_max_request_bytes_holds_back_large_frames_until_others_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(
        dir.path(),
        &[
            "--override",
            "socket.request.max.bytes=700000",
            "--override",
            "queued.max.request.bytes=1000000",
        ],
    );
    // A large frame: ApiVersions with 600 KB of trailing bytes (ignored, as Kafka does).
    let large = |id: i32| {
        let mut f = request_frame(ApiKey::ApiVersions, 3, id, &ApiVersionsRequest::default());
        f.extend(std::iter::repeat_n(0u8, 600_000));
        let size = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&size.to_be_bytes());
        f
    };
    let answered = |s: &mut TcpStream, id: i32| {
        let mut body = read_frame(s).unwrap();
        let header = ResponseHeader::decode(&mut body, 0).unwrap();
        assert_eq!(header.correlation_id, id);
    };

    // A takes 600 KB of the 1 MB budget with a frame it has only half sent.
    let frame_a = large(1);
    let mut a = TcpStream::connect(&broker.addr).unwrap();
    a.set_read_timeout(Some(common::DEADLINE)).unwrap();
    a.write_all(&frame_a[..300_000]).unwrap();
    // B's whole frame does not fit what is left: it waits (its write may block too).
    let addr = broker.addr.clone();
    let b = std::thread::spawn(move || {
        let mut b = TcpStream::connect(&addr).unwrap();
        b.set_read_timeout(Some(common::DEADLINE)).unwrap();
        b.write_all(&large(2)).unwrap();
        b
    });
    // Small frames are not held back meanwhile.
    let mut c = TcpStream::connect(&broker.addr).unwrap();
    c.set_read_timeout(Some(common::DEADLINE)).unwrap();
    c.write_all(&request_frame(
        ApiKey::ApiVersions,
        3,
        3,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    answered(&mut c, 3);
    // B is not answered while A holds the budget (a window, not a deadline: nothing
    // may arrive in it).
    let mut b = b.join().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut probe = [0u8; 1];
    let early = std::io::Read::read(&mut b, &mut probe);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "B was answered before A's frame was handled: {early:?}"
    );
    // A completes: both are answered, A first.
    a.write_all(&frame_a[300_000..]).unwrap();
    answered(&mut a, 1);
    b.set_read_timeout(Some(common::DEADLINE)).unwrap();
    answered(&mut b, 2);
}
