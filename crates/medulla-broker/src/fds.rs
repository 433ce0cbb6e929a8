//! File descriptors: the resource partitions consume (each segment keeps its log and two
//! index files open). Creating partitions is refused with a named error before the
//! process would run out, because running out mid-creation leaves a half-made topic and
//! a broker that cannot reopen its data directory.

/// Descriptors kept free for connections, the listener and everything else.
pub const FDS_RESERVED: u64 = 1024;

/// Descriptors one new partition needs (one segment: `.log`, `.index`, `.timeindex`).
pub const FDS_PER_PARTITION: u64 = 3;

/// Raises the soft open-files limit to the hard limit; returns the limit in force.
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            soft_limit()
        }
    }
}

fn soft_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

fn open_now() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Refuses `partitions` new partitions if their descriptors would not fit.
pub fn check_room(partitions: u64) -> Result<(), String> {
    let limit = soft_limit();
    let open = open_now();
    let needed = partitions.saturating_mul(FDS_PER_PARTITION);
    if open.saturating_add(needed).saturating_add(FDS_RESERVED) > limit {
        return Err(format!(
            "{partitions} new partitions need about {needed} file descriptors; {open} of the limit {limit} are in use \
             and {FDS_RESERVED} are kept for connections: raise the open-files limit (ulimit -n) to add them"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_refused_beyond_the_limit() {
        raise_limit();
        assert!(check_room(1).is_ok());
        let err = check_room(u64::MAX / 4).unwrap_err();
        assert!(err.contains("ulimit"), "{err}");
    }
}
