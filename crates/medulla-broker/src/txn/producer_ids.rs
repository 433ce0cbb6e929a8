//! Producer ids: handed out in increasing order and never twice, across crashes.
//!
//! Kafka's controller hands brokers blocks of 1,000 ids and records each block in its
//! metadata log before the broker uses it. Here the block is recorded in one small file
//! in the data directory ([`FILE`], the end of the last reserved block), written to a
//! temporary file, fsynced and renamed over the old one (then the directory fsynced)
//! before any id of the block is handed out. A crash loses at most the unused rest of a
//! block; a restart reserves the next one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's name in the data directory.
pub const FILE: &str = "producer-ids";

/// Ids reserved per write (Kafka's `ProducerIdsBlock` size).
pub const BLOCK_SIZE: i64 = 1000;

/// The allocator. Blocking: call [`ProducerIds::next`] off the async workers.
pub struct ProducerIds {
    path: PathBuf,
    /// (next id to hand out, end of the reserved block, exclusive).
    state: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Opens the allocator of `data_dir`: the next id is the end of the last block
    /// reserved there (0 on a new directory).
    pub fn open(data_dir: &Path) -> std::io::Result<ProducerIds> {
        let path = data_dir.join(FILE);
        let end = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} does not hold a producer id block end", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds {
            path,
            state: Mutex::new((end, end)),
        })
    }

    /// A producer id never handed out before. Reserves (durably) a new block when the
    /// current one is used up.
    pub fn next(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (next, end) = *state;
        if next >= end {
            let new_end = end.checked_add(BLOCK_SIZE).ok_or_else(|| {
                std::io::Error::other("producer ids are exhausted (i64::MAX reached)")
            })?;
            self.store(new_end)?;
            state.1 = new_end;
        }
        state.0 = next + 1;
        Ok(next)
    }

    fn store(&self, end: i64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "next.block.start={end}")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn parse(text: &str) -> Option<i64> {
    let value = text.trim().strip_prefix("next.block.start=")?;
    value.parse().ok().filter(|n: &i64| *n >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_a_restart_never_reuses_one() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        // The block is reserved before its first id is handed out.
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text.trim(), format!("next.block.start={BLOCK_SIZE}"));
        drop(ids);
        // "Crash": the rest of the block is skipped.
        let ids = ProducerIds::open(dir.path()).unwrap();
        assert_eq!(ids.next().unwrap(), BLOCK_SIZE);
        for n in BLOCK_SIZE + 1..3 * BLOCK_SIZE {
            assert_eq!(ids.next().unwrap(), n);
        }
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text.trim(), format!("next.block.start={}", 3 * BLOCK_SIZE));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(ProducerIds::open(dir.path()).is_err());
        std::fs::write(dir.path().join(FILE), "next.block.start=-5").unwrap();
        assert!(ProducerIds::open(dir.path()).is_err());
    }
}
