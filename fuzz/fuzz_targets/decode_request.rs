//! Fuzz target: the request codec (`check_frame`, `decode_request`) on arbitrary bytes.
//!
//! The input is one frame *body* (header and request, no size prefix), which is what the
//! connection layer hands to `decode_request`; the seeds under `fuzz/seeds/decode_request/`
//! are such bodies. The same bytes also go to `check_frame` as if they were the start of a
//! socket buffer. Neither may panic; a panic, an abort or an allocation past libFuzzer's
//! limit is a bug in the decoder (a frame from the network must end in `Err`, not a crash).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use medulla_broker::frame::{Decoded, FrameError, check_frame, decode_request};
use medulla_broker::limits::REQUEST_BYTES_MAX;

fuzz_target!(|data: &[u8]| {
    // The real limit, no limit at all, and a limit right at the buffer's length, where an
    // off-by-one in the size comparison would show.
    for max_bytes in [REQUEST_BYTES_MAX, 0, usize::MAX, data.len()] {
        match check_frame(data, max_bytes) {
            Ok(Some(size_bytes)) => {
                assert!(size_bytes <= max_bytes);
                assert!(data.len() >= 4 + size_bytes);
            }
            Ok(None) => {}
            Err(FrameError::TooLarge { size_bytes, .. }) => assert!(size_bytes > max_bytes),
            Err(FrameError::NegativeSize(size)) => assert!(size < 0),
            Err(other) => panic!("check_frame gave a decode error: {other:?}"),
        }
    }

    match decode_request(Bytes::copy_from_slice(data)) {
        Ok(Decoded::Request { header, api, .. }) => {
            // The decoder read the key and version from the same bytes the header did.
            assert_eq!(header.request_api_key, api as i16);
            assert_eq!(&header.request_api_key.to_be_bytes()[..], &data[0..2]);
            assert_eq!(&header.request_api_version.to_be_bytes()[..], &data[2..4]);
        }
        Ok(Decoded::UnsupportedApiVersions { correlation_id }) => {
            assert_eq!(&correlation_id.to_be_bytes()[..], &data[4..8]);
        }
        Err(_) => {}
    }
});
