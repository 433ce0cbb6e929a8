//! State kept in a replicated log: the pattern `_schemas` and `_dek_registry_keys`
//! share. Reads take the state under a read lock; writes run one at a time — catch the
//! log up (records other instances wrote), plan the records from the state, append
//! them in order, each applied (by the log's reader) before the next — so a write's
//! answer means it is in the log and in this instance's state.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::error::{ApiError, ApiResult};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The replicated log: appends return once the record is applied to this instance's
/// state; `sync` catches up with records others wrote.
pub trait Log: Send + Sync + 'static {
    fn append(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> BoxFuture<'_, Result<i64, String>>;
    fn sync(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// One record to append: key bytes and value bytes (`None` = tombstone).
pub type Raw = (Vec<u8>, Option<Vec<u8>>);

pub struct Logged<S> {
    state: Arc<RwLock<S>>,
    log: Box<dyn Log>,
    writes: tokio::sync::Mutex<()>,
}

impl<S> Logged<S> {
    /// `state` is what the log's reader fills.
    pub fn new(state: Arc<RwLock<S>>, log: Box<dyn Log>) -> Logged<S> {
        Logged {
            state,
            log,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, S> {
        // A panic while holding the lock cannot leave the state half-updated in a way
        // that matters more than stopping: keep serving what is there.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one write (see the module comment).
    pub async fn write<T>(
        &self,
        plan: impl FnOnce(&S) -> ApiResult<(Vec<Raw>, T)>,
    ) -> ApiResult<T> {
        let _one_at_a_time = self.writes.lock().await;
        self.log.sync().await.map_err(ApiError::store)?;
        let (records, answer) = {
            let st = self.read();
            plan(&st)?
        };
        for (key, value) in records {
            self.log.append(key, value).await.map_err(ApiError::store)?;
        }
        Ok(answer)
    }
}
