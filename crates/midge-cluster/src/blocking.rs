//! Running synchronous storage calls off the async runtime.

use midge_store::StoreError;
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

/// Runs a storage call on tokio's blocking pool (RocksDB calls may wait for the disk).
pub(crate) async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) => Err(StoreError::Invalid(format!("storage task failed: {join}")).into()),
    }
}

/// An openraft storage error for a failed call on `subject`.
pub(crate) fn storage_error<E: std::error::Error + 'static>(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    error: &E,
) -> StorageError<u64> {
    StorageIOError::new(subject, verb, AnyError::new(error)).into()
}
