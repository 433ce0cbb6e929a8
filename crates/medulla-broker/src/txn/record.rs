//! The key and value of a `__transaction_state` record, in Apache Kafka's formats
//! (`TransactionLogKey`, `TransactionLogValue`), written and read here and nowhere else:
//! the `kafka-protocol` crate does not have these Kafka-internal schemas.
//!
//! - Key, version 0: the transactional id.
//! - Value, version 0 (what Kafka writes without `transaction.version` 2): producer id,
//!   epoch, transaction timeout, state id, partitions by topic (null in `Empty`), last
//!   update and start timestamps.
//! - Value, version 1 (flexible): the same fields in compact encodings plus tagged
//!   fields. Kafka defines tags 0–2 (previous / next producer id, client transaction
//!   version), which are read and ignored. Medulla writes version 1 only when the
//!   transaction has groups (AddOffsetsToTxn) and puts their ids in tag
//!   [`GROUPS_TAG`]: Kafka keeps only the groups' `__consumer_offsets` partitions (also
//!   kept here, in the partitions), and its group coordinator finds the pending offsets
//!   by producer id when the marker arrives; Medulla's group side is told the group ids,
//!   which a restart must recover. Kafka skips tagged fields it does not know, so the
//!   record stays readable by Kafka's own schema.
//!
//! A value that does not decode is `None` (the loader skips it with a warning): nothing
//! here trusts a length before checking it against the bytes that remain.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TxnMetadata, TxnState};

/// Version of the key (Kafka's coordinator record type 0, the transaction log).
pub const KEY_VERSION: i16 = 0;

/// The tagged field of a version-1 value that holds the transaction's group ids ("MD");
/// far from Kafka's own tags, which count up from 0.
pub const GROUPS_TAG: u32 = 0x4D44;

/// The key of `transactional_id`'s records.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

/// The transactional id of a key; `None` for another key version or a malformed key.
pub fn decode_key(mut key: Bytes) -> Option<String> {
    if key.remaining() < 2 || key.get_i16() != KEY_VERSION {
        return None;
    }
    let id = get_str(&mut key)?;
    key.is_empty().then_some(id)
}

/// The value recording `m`.
pub fn encode_value(m: &TxnMetadata) -> Bytes {
    // Topics in order with their partitions, as Kafka groups them.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &m.partitions {
        match topics.last_mut() {
            Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
            _ => topics.push((topic, vec![*partition])),
        }
    }
    // Kafka writes a null partition list in Empty.
    let topics = (m.state != TxnState::Empty).then_some(topics);
    let mut b = BytesMut::with_capacity(64 + m.partitions.len() * 8);
    let flexible = !m.groups.is_empty();
    b.put_i16(i16::from(flexible));
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.id());
    match (&topics, flexible) {
        (None, false) => b.put_i32(-1),
        (None, true) => put_uvarint(&mut b, 0),
        (Some(topics), false) => {
            b.put_i32(topics.len() as i32);
            for (topic, partitions) in topics {
                put_str(&mut b, topic);
                b.put_i32(partitions.len() as i32);
                for p in partitions {
                    b.put_i32(*p);
                }
            }
        }
        (Some(topics), true) => {
            put_uvarint(&mut b, topics.len() as u32 + 1);
            for (topic, partitions) in topics {
                put_compact_str(&mut b, topic);
                put_uvarint(&mut b, partitions.len() as u32 + 1);
                for p in partitions {
                    b.put_i32(*p);
                }
                put_uvarint(&mut b, 0); // the element's tagged fields
            }
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    if flexible {
        let mut groups = BytesMut::new();
        put_uvarint(&mut groups, m.groups.len() as u32 + 1);
        for g in &m.groups {
            put_compact_str(&mut groups, g);
        }
        put_uvarint(&mut b, 1);
        put_uvarint(&mut b, GROUPS_TAG);
        put_uvarint(&mut b, groups.len() as u32);
        b.put_slice(&groups);
    }
    b.freeze()
}

/// The metadata a value records (the fields Kafka does not persist are unset); `None`
/// for an unknown version or malformed bytes.
pub fn decode_value(mut v: Bytes) -> Option<TxnMetadata> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    let flexible = match version {
        0 => false,
        1 => true,
        _ => return None,
    };
    if v.remaining() < 8 + 2 + 4 + 1 {
        return None;
    }
    let producer_id = v.get_i64();
    let producer_epoch = v.get_i16();
    let timeout_ms = v.get_i32();
    let state = TxnState::from_id(v.get_i8())?;
    let mut partitions = BTreeSet::new();
    let topic_count = if flexible {
        get_uvarint(&mut v)?.checked_sub(1)
    } else {
        (v.remaining() >= 4)
            .then(|| v.get_i32())
            .and_then(|n| u32::try_from(n).ok())
    };
    // A null list decodes as `None` here and holds nothing; so does an Empty state's.
    if let Some(n) = topic_count {
        for _ in 0..n {
            let topic = if flexible {
                get_compact_str(&mut v)?
            } else {
                get_str(&mut v)?
            };
            let count = if flexible {
                get_uvarint(&mut v)?.checked_sub(1)?
            } else {
                (v.remaining() >= 4)
                    .then(|| v.get_i32())
                    .and_then(|n| u32::try_from(n).ok())?
            } as usize;
            if v.remaining() / 4 < count {
                return None;
            }
            for _ in 0..count {
                let p = v.get_i32();
                if state != TxnState::Empty {
                    partitions.insert((topic.clone(), p));
                }
            }
            if flexible {
                skip_tagged_fields(&mut v)?;
            }
        }
    }
    if v.remaining() < 16 {
        return None;
    }
    let last_update_ms = v.get_i64();
    let start_ms = v.get_i64();
    let mut groups = BTreeSet::new();
    if flexible {
        let fields = get_uvarint(&mut v)?;
        for _ in 0..fields {
            let tag = get_uvarint(&mut v)?;
            let size = get_uvarint(&mut v)? as usize;
            if v.remaining() < size {
                return None;
            }
            let mut data = v.split_to(size);
            if tag == GROUPS_TAG {
                let n = get_uvarint(&mut data)?.checked_sub(1)?;
                for _ in 0..n {
                    groups.insert(get_compact_str(&mut data)?);
                }
            }
        }
    }
    v.is_empty().then_some(TxnMetadata {
        producer_id,
        last_producer_id: NO_PRODUCER_ID,
        producer_epoch,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state,
        partitions,
        groups,
        start_ms,
        last_update_ms,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes: transactional ids and topic names come
    // from requests whose decoder enforced that.
    b.put_i16(s.len().min(i16::MAX as usize) as i16);
    b.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn get_str(b: &mut Bytes) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let n = usize::try_from(b.get_i16()).ok()?;
    if b.remaining() < n {
        return None;
    }
    String::from_utf8(b.split_to(n).to_vec()).ok()
}

fn put_compact_str(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u32 + 1);
    b.put_slice(s.as_bytes());
}

fn get_compact_str(b: &mut Bytes) -> Option<String> {
    let n = get_uvarint(b)?.checked_sub(1)? as usize;
    if b.remaining() < n {
        return None;
    }
    String::from_utf8(b.split_to(n).to_vec()).ok()
}

fn put_uvarint(b: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        b.put_u8((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    b.put_u8(n as u8);
}

fn get_uvarint(b: &mut Bytes) -> Option<u32> {
    let mut n: u32 = 0;
    for i in 0..5 {
        if !b.has_remaining() {
            return None;
        }
        let byte = b.get_u8();
        n |= u32::from(byte & 0x7f).checked_shl(7 * i)?;
        if byte & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

fn skip_tagged_fields(b: &mut Bytes) -> Option<()> {
    for _ in 0..get_uvarint(b)? {
        get_uvarint(b)?;
        let size = get_uvarint(b)? as usize;
        if b.remaining() < size {
            return None;
        }
        b.advance(size);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> TxnMetadata {
        TxnMetadata {
            producer_id: 4000,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: 7,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("admissions", 0), ("admissions", 3), ("labs", 1)]
                .into_iter()
                .map(|(t, p)| (t.to_owned(), p))
                .collect(),
            groups: BTreeSet::new(),
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_000_500,
        }
    }

    #[test]
    fn keys_round_trip_and_other_versions_are_not_ours() {
        assert_eq!(
            decode_key(encode_key("orders-tx")),
            Some("orders-tx".into())
        );
        assert_eq!(&encode_key("t")[..], b"\x00\x00\x00\x01t");
        let mut other = BytesMut::new();
        other.put_i16(1);
        put_str(&mut other, "t");
        assert_eq!(decode_key(other.freeze()), None);
        assert_eq!(decode_key(Bytes::from_static(b"\x00")), None);
    }

    #[test]
    fn version_0_is_kafkas_layout_byte_for_byte() {
        let mut m = ongoing();
        m.partitions = [("t".to_owned(), 2)].into_iter().collect();
        let mut want = Vec::new();
        want.extend_from_slice(&0i16.to_be_bytes()); // version
        want.extend_from_slice(&4000i64.to_be_bytes()); // producer id
        want.extend_from_slice(&7i16.to_be_bytes()); // epoch
        want.extend_from_slice(&60_000i32.to_be_bytes()); // timeout
        want.push(1); // Ongoing
        want.extend_from_slice(&1i32.to_be_bytes()); // one topic
        want.extend_from_slice(b"\x00\x01t");
        want.extend_from_slice(&1i32.to_be_bytes()); // one partition
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_500i64.to_be_bytes()); // last update
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // start
        assert_eq!(&encode_value(&m)[..], &want[..]);
        // Empty carries a null partition list.
        m.state = TxnState::Empty;
        m.partitions.clear();
        let empty = encode_value(&m);
        assert_eq!(&empty[17..21], &(-1i32).to_be_bytes());
    }

    #[test]
    fn values_round_trip_in_both_versions() {
        let mut m = ongoing();
        assert_eq!(decode_value(encode_value(&m)), Some(m.clone()));
        m.groups = ["ward-7".to_owned(), "billing".to_owned()].into();
        m.partitions.insert(("__consumer_offsets".into(), 17));
        let v1 = encode_value(&m);
        assert_eq!(&v1[..2], &1i16.to_be_bytes());
        assert_eq!(decode_value(v1), Some(m.clone()));
        for state in TxnState::ALL {
            let mut m = m.clone();
            m.state = state;
            if state == TxnState::Empty {
                m.partitions.clear();
            }
            assert_eq!(decode_value(encode_value(&m)), Some(m));
        }
    }

    #[test]
    fn kafkas_own_tags_are_skipped() {
        // A version-1 value as Kafka 4 writes it: one partition, tags 0 (previous
        // producer id) and 2 (client transaction version).
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(9);
        b.put_i16(0);
        b.put_i32(1000);
        b.put_i8(TxnState::Ongoing.id());
        put_uvarint(&mut b, 2);
        put_compact_str(&mut b, "t");
        put_uvarint(&mut b, 2);
        b.put_i32(0);
        put_uvarint(&mut b, 0);
        b.put_i64(5);
        b.put_i64(4);
        put_uvarint(&mut b, 2);
        put_uvarint(&mut b, 0);
        put_uvarint(&mut b, 8);
        b.put_i64(8);
        put_uvarint(&mut b, 2);
        put_uvarint(&mut b, 2);
        b.put_i16(2);
        let m = decode_value(b.freeze()).unwrap();
        assert_eq!(m.producer_id, 9);
        assert_eq!(m.partitions.len(), 1);
        assert!(m.groups.is_empty());
        assert_eq!((m.last_update_ms, m.start_ms), (5, 4));
    }

    #[test]
    fn truncated_or_padded_values_are_refused_never_half_read() {
        let mut m = ongoing();
        m.groups = ["g".to_owned()].into();
        for whole in [encode_value(&ongoing()), encode_value(&m)] {
            for cut in 0..whole.len() {
                assert_eq!(decode_value(whole.slice(..cut)), None, "cut at {cut}");
            }
            let mut padded = BytesMut::from(&whole[..]);
            padded.put_u8(0);
            assert_eq!(decode_value(padded.freeze()), None);
        }
        // An unknown state id, an unknown version.
        let mut bad = BytesMut::from(&encode_value(&ongoing())[..]);
        bad[16] = 42;
        assert_eq!(decode_value(bad.freeze()), None);
        assert_eq!(decode_value(Bytes::from_static(b"\x00\x05")), None);
    }

    #[test]
    fn huge_claimed_counts_allocate_nothing() {
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i64(1);
        b.put_i16(0);
        b.put_i32(1);
        b.put_i8(1);
        b.put_i32(1);
        put_str(&mut b, "t");
        b.put_i32(i32::MAX); // partitions claimed
        assert_eq!(decode_value(b.freeze()), None);
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(1);
        b.put_i16(0);
        b.put_i32(1);
        b.put_i8(1);
        b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // u32::MAX topics claimed
        assert_eq!(decode_value(b.freeze()), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_value(Bytes::from(bytes.clone()));
            let _ = decode_key(Bytes::from(bytes));
        }
    }
}
