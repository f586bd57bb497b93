//! Openraft's storage test suite against `LogStorage` + `StateMachine` over each store.

use crate::{LogStorage, StateMachine, TypeConfig};
use midge_store::{FsyncPolicy, LogStore, MemStore, RocksStore, StateStore};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};
use std::sync::Arc;
use tempfile::TempDir;

fn build_error(e: &(impl std::error::Error + 'static)) -> StorageError<u64> {
    StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, AnyError::new(e)).into()
}

async fn build<S: LogStore + StateStore>(
    dir: TempDir,
    store: S,
) -> Result<(TempDir, LogStorage<S>, StateMachine<S>), StorageError<u64>> {
    let store = Arc::new(store);
    let sm = StateMachine::open(store.clone(), dir.path())
        .await
        .map_err(|e| build_error(&e))?;
    Ok((dir, LogStorage::new(store), sm))
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, LogStorage<MemStore>, StateMachine<MemStore>, TempDir>
    for MemBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStorage<MemStore>, StateMachine<MemStore>), StorageError<u64>> {
        let dir = TempDir::new().map_err(|e| build_error(&e))?;
        build(dir, MemStore::new()).await
    }
}

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStorage<RocksStore>, StateMachine<RocksStore>, TempDir>
    for RocksBuilder
{
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStorage<RocksStore>, StateMachine<RocksStore>), StorageError<u64>>
    {
        let dir = TempDir::new().map_err(|e| build_error(&e))?;
        let store = RocksStore::open(&dir.path().join("raft"), FsyncPolicy::Always)
            .map_err(|e| build_error(&e))?;
        build(dir, store).await
    }
}

#[test]
fn openraft_suite_on_mem_store() {
    Suite::test_all(MemBuilder).unwrap();
}

#[test]
fn openraft_suite_on_rocks_store() {
    Suite::test_all(RocksBuilder).unwrap();
}
