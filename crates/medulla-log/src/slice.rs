//! [`FileSlice`]: whole batches of a segment file, named by position and length, so a
//! reader can send them straight from the file (sendfile) instead of copying them.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch;

/// A byte range of one segment file holding one or more whole batches, as
/// [`crate::PartitionLog::read_slice`] found them.
///
/// Invariants: the range is not empty, starts at a batch and ends where a batch ends,
/// and lies below the segment size committed when the slice was made. Segment files are
/// only ever appended to, and a deleted or replaced segment stays readable through the
/// handle held here, so the bytes stay what they were when the slice was made; a reader
/// still checks what it gets ([`FileSlice::read_to_bytes`]) or that it got all of it.
#[derive(Clone)]
pub struct FileSlice {
    file: Arc<File>,
    position: u64,
    len_bytes: usize,
    next_offset: i64,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, position: u64, len_bytes: usize, next_offset: i64) -> Self {
        debug_assert!(len_bytes > 0, "a slice holds at least one batch");
        FileSlice {
            file,
            position,
            len_bytes,
            next_offset,
        }
    }

    /// The segment file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the first batch starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes in the range (never zero).
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// The offset after the last record of the last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Copies the range into memory and checks that it is still whole batches: the
    /// fallback where the bytes cannot go straight from the file to their destination.
    pub fn read_to_bytes(&self) -> crate::Result<Bytes> {
        let mut buffer = vec![0u8; self.len_bytes];
        self.file.read_exact_at(&mut buffer, self.position)?;
        let mut at = 0usize;
        while at < buffer.len() {
            let (_, size) = batch::parse_length(&buffer[at..])?;
            at += size;
        }
        if at != buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} bytes at {} are no longer whole batches",
                    self.len_bytes, self.position
                ),
            )
            .into());
        }
        Ok(Bytes::from(buffer))
    }
}

impl fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSlice")
            .field("position", &self.position)
            .field("len_bytes", &self.len_bytes)
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}
