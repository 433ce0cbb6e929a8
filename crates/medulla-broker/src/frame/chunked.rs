//! A response frame as a list of chunks: encoded bytes, and ranges of segment files
//! that the connection sends from the file (sendfile) instead of copying them.
//!
//! Still a pure codec. A Fetch handler puts each partition's records in the response as
//! a *placeholder* ([`FileParts::place`]): a `Bytes` of the records' length that points
//! into a private zero-filled region and stands for one [`FileSlice`]. kafka-protocol
//! writes a bytes field with `put_slice(&bytes[..])`, so the buffer the response is
//! encoded into here ([`ChunkedBuf`]) sees each placeholder arrive by its address: it
//! closes the bytes chunk it was filling, records the file range instead of copying
//! zeros, and carries on. Everything else is copied as usual. One 4-byte size covers the
//! whole frame. The zeros never reach the wire: encoding fails unless every placeholder
//! was met exactly once, at its own length, and nothing else pointed into the region.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::buf::ByteBufMut;
use medulla_log::FileSlice;

use crate::limits::ZERO_COPY_RESPONSE_BYTES_MAX;

/// One piece of a response frame, in the order it goes to the socket.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Encoded bytes (the first chunk starts with the frame's size).
    Bytes(Bytes),
    /// Whole record batches, sent from their segment file.
    File(FileSlice),
}

impl Chunk {
    /// Bytes this chunk puts on the wire.
    pub fn len_bytes(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(f) => f.len_bytes(),
        }
    }
}

/// The placeholder region: address space only. It is never read or written (nothing
/// but its addresses is used), so its zero pages are never touched.
///
/// Not a `static [u8; N]`: LLVM keeps a constant all-zero static in `.rodata`, which
/// would put its whole size in the binary; a zeroed allocation costs address space only.
fn region() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| Vec::leak(vec![0u8; ZERO_COPY_RESPONSE_BYTES_MAX]))
}

/// Where `bytes` starts in the placeholder region, if it starts there.
fn region_offset(bytes: &[u8]) -> Option<usize> {
    let region = region();
    let start = region.as_ptr() as usize;
    let at = bytes.as_ptr() as usize;
    (!bytes.is_empty() && at >= start && at < start + region.len()).then(|| at - start)
}

/// The file ranges of one response, each stood for by a placeholder: disjoint, in
/// increasing order, from the start of the region, so a placeholder's address names it.
#[derive(Debug, Default)]
pub struct FileParts {
    /// `(start in the region, slice)`, by increasing start.
    placed: Vec<(usize, FileSlice)>,
    /// The first byte of the region not handed out.
    next: usize,
}

impl FileParts {
    /// A placeholder for `slice`, to put in the response where its bytes go; the slice
    /// back when the region has no room left for it (send its bytes instead).
    pub fn place(&mut self, slice: FileSlice) -> Result<Bytes, FileSlice> {
        let start = self.next;
        let Some(end) = start
            .checked_add(slice.len_bytes())
            .filter(|end| *end <= ZERO_COPY_RESPONSE_BYTES_MAX)
        else {
            return Err(slice);
        };
        self.placed.push((start, slice));
        self.next = end;
        Ok(Bytes::from_static(&region()[start..end]))
    }

    /// No file range was placed.
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }
}

/// The buffer a chunked response is encoded into: a `BytesMut` for the bytes since the
/// last file range, and the chunks before it.
pub struct ChunkedBuf {
    /// Bytes written since the last file range.
    current: BytesMut,
    /// The frame's first bytes, once a file range followed them (their size prefix is
    /// filled in last, so they stay mutable).
    head: Option<BytesMut>,
    /// The chunks after `head`.
    chunks: Vec<Chunk>,
    /// Bytes in `head` and `chunks`.
    written: usize,
    /// The file ranges; each is taken when its placeholder is met.
    placed: Vec<(usize, Option<FileSlice>)>,
    /// The first thing that went wrong (reported by [`ChunkedBuf::finish`]).
    error: Option<String>,
    /// What [`ByteBufMut::range`] hands out for a range it cannot reach.
    scratch: Vec<u8>,
}

impl ChunkedBuf {
    /// An empty frame whose placeholders stand for `files`.
    pub fn new(files: FileParts) -> ChunkedBuf {
        ChunkedBuf {
            current: BytesMut::with_capacity(256),
            head: None,
            chunks: Vec::with_capacity(2 * files.placed.len() + 1),
            written: 0,
            placed: files
                .placed
                .into_iter()
                .map(|(start, slice)| (start, Some(slice)))
                .collect(),
            error: None,
            scratch: Vec::new(),
        }
    }

    fn fail(&mut self, why: impl FnOnce() -> String) {
        if self.error.is_none() {
            self.error = Some(why());
        }
    }

    /// A placeholder `len_bytes` long at `start` in the region arrived: end the bytes
    /// chunk and put its file range in its place.
    fn put_file(&mut self, start: usize, len_bytes: usize) {
        let slice = match self.placed.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => match &self.placed[i].1 {
                Some(slice) if slice.len_bytes() == len_bytes => self.placed[i].1.take(),
                Some(slice) => {
                    let placed = slice.len_bytes();
                    self.fail(|| {
                        format!("placeholder at {start} met with {len_bytes} bytes, placed with {placed}")
                    });
                    None
                }
                None => {
                    self.fail(|| format!("placeholder at {start} met twice"));
                    None
                }
            },
            Err(_) => {
                self.fail(|| {
                    format!("{len_bytes} bytes at {start} of the region were never placed")
                });
                None
            }
        };
        let Some(slice) = slice else { return };
        let before = self.current.split();
        self.written += before.len() + slice.len_bytes();
        match self.head {
            None => self.head = Some(before),
            Some(_) if before.is_empty() => {}
            Some(_) => self.chunks.push(Chunk::Bytes(before.freeze())),
        }
        self.chunks.push(Chunk::File(slice));
    }

    /// The chunks, the first one's size prefix filled in. Fails if a placeholder was not
    /// met exactly once at its length, or anything else pointed into the region.
    pub fn finish(mut self) -> anyhow::Result<Vec<Chunk>> {
        if let Some(error) = self.error {
            anyhow::bail!("chunked encoding: {error}");
        }
        if let Some((start, Some(slice))) = self.placed.iter().find(|(_, s)| s.is_some()) {
            anyhow::bail!(
                "chunked encoding: the placeholder at {start} ({} bytes) never reached the buffer",
                slice.len_bytes()
            );
        }
        let total = self.written + self.current.len();
        let size = i32::try_from(total.saturating_sub(4))?;
        let mut chunks = Vec::with_capacity(self.chunks.len() + 2);
        let mut head = match self.head.take() {
            Some(head) => head,
            None => std::mem::take(&mut self.current),
        };
        anyhow::ensure!(head.len() >= 4, "chunked encoding: no size prefix");
        head[..4].copy_from_slice(&size.to_be_bytes());
        chunks.push(Chunk::Bytes(head.freeze()));
        chunks.append(&mut self.chunks);
        if !self.current.is_empty() {
            chunks.push(Chunk::Bytes(self.current.freeze()));
        }
        Ok(chunks)
    }
}

// SAFETY: `BufMut` asks that `chunk_mut` return writable (possibly uninitialised) memory
// and that `advance_mut(cnt)` be called only once the first `cnt` bytes of it are
// initialised, after which they belong to the buffer. Both, and `remaining_mut`, forward
// to the one `BytesMut` being filled (`current`), so its implementation upholds the
// contract for us; nothing else here touches its memory or length between those calls.
// `put_slice`, the only other method overridden, either forwards to `current` too or
// records a file range and leaves `current` as it was.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller guarantees the first `cnt` bytes of `chunk_mut()`, which is
        // `current.chunk_mut()`, are initialised: exactly `current`'s precondition.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match region_offset(src) {
            Some(start) => self.put_file(start, src.len()),
            None => self.current.put_slice(src),
        }
    }
}

/// The gaps kafka-protocol uses to encode record batches (never message fields) reach
/// back only into the current bytes chunk; a reach further back is reported by
/// [`ChunkedBuf::finish`] rather than panicking.
impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.written + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        match offset.checked_sub(self.written) {
            Some(at) => self.current.resize(at, 0),
            None => self.fail(|| format!("seek to {offset}, before the current chunk")),
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let end = self.offset();
        if r.start >= self.written && r.start <= r.end && r.end <= end {
            let written = self.written;
            return &mut self.current[r.start - written..r.end - written];
        }
        let len = r.end.saturating_sub(r.start);
        self.fail(|| format!("range {r:?} outside the current chunk"));
        self.scratch.clear();
        self.scratch.resize(len, 0);
        &mut self.scratch
    }
}

/// Encodes a response frame as [`super::encode_response`] does, but with each file range
/// of `files` where its placeholder is: the frame's chunks, in order.
pub fn encode_response_chunked(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: ResponseKind,
    files: FileParts,
) -> anyhow::Result<Vec<Chunk>> {
    if files.is_empty() {
        return Ok(vec![Chunk::Bytes(super::encode_response(
            api,
            version,
            correlation_id,
            body,
        )?)]);
    }
    crate::handlers::versioning::fit(&mut body, version);
    let header_version = api.response_header_version(version);
    let mut buf = ChunkedBuf::new(files);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)?;
    match &body {
        ResponseKind::Fetch(r) => r.encode(&mut buf, version)?,
        _ => anyhow::bail!("file ranges in a {api:?} response"),
    }
    buf.finish()
}

#[cfg(test)]
mod tests;
