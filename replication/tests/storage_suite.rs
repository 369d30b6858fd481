//! openraft's storage conformance suite (`openraft::testing::log::Suite`) on the store (the log
//! in the WAL, the state machine in redb): log, vote, state machine and snapshot semantics as
//! openraft requires them.

use openraft::StorageError;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use redb::Database;
use redb::backends::InMemoryBackend;
use replication::store::Databases;
use replication::store::Executor;
use replication::store::LogStore;
use replication::store::StateMachine;
use replication::store::Store;
use replication::types::TypeConfig;
use txn::types::ShardId;

struct FreshStore {
    executor: Executor,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, Store> for FreshStore {
    async fn build(&self) -> Result<(Store, LogStore, StateMachine), StorageError<TypeConfig>> {
        let memory = || {
            Database::builder().create_with_backend(InMemoryBackend::new()).expect("in-memory db")
        };
        let databases = Databases {
            node: memory(),
            state: memory(),
            wal: std::sync::Arc::new(replication::store::MemDir::default()),
            wal_segment_bytes: 64 << 10,
            append_bytes_max: replication::store::log_store::APPEND_BYTES_MAX,
            presence: None,
            first_incarnation: 1,
        };
        let store = Store::open(databases, self.executor, 1, 1, &[1]).expect("open store");
        let (log, sm) = store.open_shard(ShardId(0)).await.expect("open shard");
        Ok((store, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_passes_openraft_suite_with_writer_thread() {
    replication::types::with_seed(7, async {
        Suite::test_all(FreshStore { executor: Executor::Thread }).await.expect("suite");
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn store_passes_openraft_suite_with_writer_task() {
    replication::types::with_seed(7, async {
        Suite::test_all(FreshStore {
            executor: Executor::Task { sync_delay: std::time::Duration::ZERO },
        })
        .await
        .expect("suite");
    })
    .await;
}
