//! Fuzz target: RecordBatch v2 validation (`batch::validate`, `batch::parse_header`) on
//! arbitrary bytes.
//!
//! Input layout: one control byte, then the produce payload (one or more batches).
//! - bit 0: `require_keys`.
//! - bit 1: before validating, rewrite the CRC-32C of every batch whose length field fits,
//!   so mutations get past the CRC check and reach the record parser and decompressors
//!   (a fuzzer would almost never guess a CRC on its own).
//! - bits 2-3: which `max_message_bytes` to pass (see `MAX_MESSAGE_BYTES`).
//!
//! Neither function may panic: the payload comes straight from a producer, or from a
//! segment with a torn write during recovery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medulla_log::batch::{parse_header, validate};

/// Offsets in the v2 batch header (see the layout in `medulla_log::batch`).
const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
/// baseOffset i64 + batchLength i32: the bytes not counted by batchLength.
const LOG_OVERHEAD_BYTES: usize = 12;

/// Kafka's default `max.message.bytes`, nothing, a tiny limit, and no limit.
const MAX_MESSAGE_BYTES: [usize; 4] = [1_048_588, 0, 64, usize::MAX];

fn fix_crcs(payload: &mut [u8]) {
    let mut position = 0usize;
    while let Some(length) =
        payload.get(position + OFFSET_BATCH_LENGTH..position + LOG_OVERHEAD_BYTES)
    {
        let batch_length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let Ok(batch_length) = usize::try_from(batch_length) else {
            return;
        };
        let end = position + LOG_OVERHEAD_BYTES + batch_length;
        if end > payload.len() || end < position + OFFSET_ATTRIBUTES {
            return;
        }
        let crc = crc32c::crc32c(&payload[position + OFFSET_ATTRIBUTES..end]);
        payload[position + OFFSET_CRC..position + OFFSET_ATTRIBUTES]
            .copy_from_slice(&crc.to_be_bytes());
        position = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, payload)) = data.split_first() else {
        return;
    };
    let require_keys = control & 0b01 != 0;
    let max_message_bytes = MAX_MESSAGE_BYTES[usize::from((control >> 2) & 0b11)];
    let mut payload = payload.to_vec();
    if control & 0b10 != 0 {
        fix_crcs(&mut payload);
    }

    let header = parse_header(&payload);
    if let Ok(validated) = validate(&payload, max_message_bytes, require_keys) {
        // A valid payload has at least one batch and its first header is the one
        // `parse_header` reads at byte 0.
        let first = validated
            .headers
            .first()
            .expect("validate accepted an empty payload");
        assert_eq!(Some(first), header.as_ref().ok());
        assert!(
            validated
                .headers
                .iter()
                .all(|h| h.size_bytes() <= payload.len())
        );
    }
});
