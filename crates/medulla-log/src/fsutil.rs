//! Small file-system helpers whose ordering matters for crash safety: atomic replace
//! (write a temporary file, fsync it, rename it over, fsync the directory) and
//! directory fsync.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

/// Suffix of files being written by [`write_atomic`]; leftovers are removed on open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Makes the entries of a directory (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new
/// file, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Whether the file at `path` holds exactly `contents` (false when it cannot be read).
/// Every file this crate replaces is written by [`write_atomic`], which syncs the data
/// before the file gets its name: a file that holds the bytes has them on disk.
pub(crate) fn holds(path: &Path, contents: &[u8]) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    if file.metadata().map(|m| m.len()).ok() != Some(contents.len() as u64) {
        return false;
    }
    let mut existing = Vec::with_capacity(contents.len());
    file.read_to_end(&mut existing).is_ok() && existing == contents
}

/// Reads a whole small file, refusing one larger than `max_bytes`. `Ok(None)` if it
/// does not exist.
pub fn read_small(path: &Path, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is larger than {max_bytes} bytes", path.display()),
        ));
    }
    Ok(Some(bytes))
}

/// Writes a one-number checkpoint file atomically.
pub(crate) fn write_checkpoint(path: &Path, value: i64) -> io::Result<()> {
    write_atomic(path, format!("{value}\n").as_bytes())
}

/// Reads a one-number checkpoint file; `Ok(None)` if missing. A damaged checkpoint is
/// reported (and ignored by the caller with a warning) rather than trusted.
pub(crate) fn read_checkpoint(path: &Path) -> io::Result<Option<i64>> {
    let Some(bytes) = read_small(path, crate::limits::CHECKPOINT_FILE_BYTES_MAX)? else {
        return Ok(None);
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is damaged", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        assert_eq!(read_checkpoint(&path).unwrap(), None);
        write_checkpoint(&path, 42).unwrap();
        assert_eq!(read_checkpoint(&path).unwrap(), Some(42));
        write_checkpoint(&path, 7).unwrap();
        assert_eq!(read_checkpoint(&path).unwrap(), Some(7));
        assert!(!dir.path().join("cp.tmp").exists());
        std::fs::write(&path, "x").unwrap();
        assert!(read_checkpoint(&path).is_err());
        std::fs::write(&path, vec![b'1'; 100]).unwrap();
        assert!(read_checkpoint(&path).is_err());
    }
}
