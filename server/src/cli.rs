//! `kvd start` and `kvd demo`: command-line parsing and running a node until it is told to stop.
//!
//! `kvd start --id N --listen HOST:PORT --peers 1=HOST:PORT,... --data DIR [--shards S]` (or
//! `--config node.toml` with the same keys; flags win). Ctrl-C or SIGTERM stop the node cleanly:
//! it stops accepting requests, stops its Raft groups and closes its database. A failed disk
//! write stops it too (fail-stop: retrying a failed fsync is unsafe). Logs go to standard error
//! through `tracing`, filtered by `RUST_LOG` (default `info`).

use std::hash::BuildHasher;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use clap::Parser;
use clap::Subcommand;
use client::connector::TcpConnector;
use replication::store::Executor;
use tonic::transport::server::TcpIncoming;

use crate::clock::SystemClock;
use crate::config::ConfigError;
use crate::config::DEFAULT_SHARDS;
use crate::config::FileConfig;
use crate::config::NodeConfig;
use crate::config::parse_peers;
use crate::config::resolve;
use crate::demo::DemoArgs;
use crate::node::Node;
use crate::node::StartOptions;

/// The kvd command line.
#[derive(Parser)]
#[command(
    name = "kvd",
    version,
    about = "A node of the replicated, sharded, transactional key-value store"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// kvd's subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Start a node of a cluster.
    Start(StartArgs),
    /// Start a local cluster on loopback and a shell connected to it.
    Demo(DemoArgs),
}

/// `kvd start` flags.
#[derive(Args, Debug, Default)]
pub struct StartArgs {
    /// This node's id (a positive integer, listed in --peers).
    #[arg(long)]
    pub id: Option<u64>,
    /// Address to listen on, HOST:PORT.
    #[arg(long)]
    pub listen: Option<String>,
    /// Every node of the cluster: ID=HOST:PORT[,ID=HOST:PORT...].
    #[arg(long)]
    pub peers: Option<String>,
    /// Data directory (created if missing; refused if it belongs to another node).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of shards (fixed when the cluster is created; default 4).
    #[arg(long)]
    pub shards: Option<u32>,
    /// A TOML file with the same keys (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Merges the config file and the flags into a validated configuration.
pub fn start_config(args: &StartArgs) -> Result<NodeConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let missing = |what: &str| {
        ConfigError::Invalid(format!("missing --{what} (or `{what}` in the config file)"))
    };
    let peers = args.peers.clone().or(file.peers).ok_or_else(|| missing("peers"))?;
    let data = args.data.clone().or(file.data).ok_or_else(|| missing("data"))?;
    // Fixed when the cluster was created: a restart without `--shards` takes the data
    // directory's (before 2026-12-07 the default, which the identity check then refused).
    let shards = args
        .shards
        .or(file.shards)
        .or_else(|| replication::store::identity::stored_shards(&data))
        .unwrap_or(DEFAULT_SHARDS);
    NodeConfig {
        id: args.id.or(file.id).ok_or_else(|| missing("id"))?,
        listen: args.listen.clone().or(file.listen).ok_or_else(|| missing("listen"))?,
        peers: parse_peers(&peers)?,
        data,
        shards,
        consistency: file.consistency.unwrap_or_default(),
        limits: file.limits,
        timing: file.timing,
    }
    .validate()
}

/// A seed for openraft's generator, from the process's random hasher keys.
pub fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}

/// Resolves when the process is asked to stop (Ctrl-C, SIGTERM) or storage fails.
pub async fn stop_signal(node: Arc<Node>) {
    let storage_failed = node.storage_failure();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = terminate => tracing::info!("terminated; stopping"),
        _ = storage_failed => {}
    }
}

/// Catches SIGXFSZ, whose default action kills the process with a core dump, so that a write
/// past the process's file-size limit (RLIMIT_FSIZE) fails with EFBIG instead, and the node
/// handles it as any storage failure: it logs the error, stops serving and exits with status 1
/// (fail-stop, [`crate::node::Node::storage_failure`]). PostgreSQL ignores the signal for the same reason.
/// The handler stays for the life of the process (tokio never removes one); the returned
/// stream is never read.
#[cfg(unix)]
fn catch_file_size_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::SignalKind;
    match tokio::signal::unix::signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot catch SIGXFSZ: a write past the file-size limit will kill the process");
            None
        }
    }
}

/// How long a stopping node waits for its clients' connections to close before it stops
/// anyway.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(5);
/// How long a stopping node waits for its Raft groups to stop (a stalled disk holds them).
pub const GROUPS_STOP_MAX: Duration = Duration::from_secs(5);

/// Binds, starts and serves one node until it is told to stop.
pub async fn serve(config: NodeConfig) -> Result<(), String> {
    #[cfg(unix)]
    let _file_size_signal = catch_file_size_signal();
    let addr = resolve(&config.listen).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let options = StartOptions {
        connector: Arc::new(TcpConnector),
        physical: Arc::new(SystemClock),
        executor: Executor::Thread,
        database: None,
    };
    let listen = config.listen.clone();
    let node = replication::types::with_seed(random_seed(), Node::start(config, options))
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(%listen, "serving");
    // A stalled disk holds the writer, and maybe whatever reads it: the watchdog thread stops
    // the process at once, as a crash would (what was acknowledged is durable).
    let stall_limit = Duration::from_millis(node.context().config.timing.disk_stall_ms);
    node.store().watch_stalls(stall_limit, move |why| {
        tracing::error!(
            "the disk stalls: {why} (over disk_stall_ms, {stall_limit:?}); a node whose disk \
             hangs would stay in its Raft groups without doing its part, so it stops now. \
             Start it again once the disk works"
        );
        std::process::exit(1);
    });
    let stopping = Arc::new(tokio::sync::Notify::new());
    let stop = {
        let node = node.clone();
        let stopping = stopping.clone();
        async move {
            stop_signal(node.clone()).await;
            node.begin_stop().await;
            stopping.notify_one();
        }
    };
    let served = node
        .router()
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stop);
    // The graceful stop waits for every connection to close, which a client that stopped
    // reading its stream can put off for ever (its HTTP/2 window full, its keep-alives still
    // answered), and the node's shards, still led here, with it (a review's finding,
    // 2026-12-06): past `SHUTDOWN_DRAIN_MAX` the node stops anyway.
    let drained_or_not = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_DRAIN_MAX).await;
    };
    let served = tokio::select! {
        served = served => served,
        () = drained_or_not => {
            tracing::warn!(?SHUTDOWN_DRAIN_MAX, "connections still open after the stop; closing them");
            Ok(())
        }
    };
    let failure = node.failure();
    // A group's shutdown waits for its storage calls, which a stalled disk never ends.
    if tokio::time::timeout(GROUPS_STOP_MAX, node.shutdown()).await.is_err() {
        tracing::warn!(?GROUPS_STOP_MAX, "the Raft groups did not stop in time; exiting anyway");
    }
    served.map_err(|e| format!("serving failed: {e}"))?;
    match failure {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Makes any panic stop the process at once (fail-stop). A panic is a broken invariant (the
/// lock table's and the state machine's assertions, among others), and the multi-threaded
/// runtime only ends the task that panicked: the shard's state lock it held was left poisoned,
/// every later handler of that shard panicked in turn, and the replica went on leading, with
/// heartbeats and all, a shard nobody could use until the node was restarted (found by a
/// review, 2026-12-06; the simulation's runtime already stops at a panic). The standard hook
/// prints the message and location first. A node restarted after this recovers from its log
/// as after a crash.
pub(crate) fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("kvd: a panic is a broken invariant: stopping the node now (abort)");
        std::process::abort();
    }));
}

/// The whole of `kvd`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => {
            let config = match start_config(&args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("kvd: error: {error}");
                    return ExitCode::from(2);
                }
            };
            init_logging();
            abort_on_panic();
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("kvd: error: cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("kvd: error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo(args) => {
            // The demo's nodes run in this process: a panic in one would leave its shard's
            // state lock poisoned while it led on, as in `kvd start` (a review, 2026-12-07).
            abort_on_panic();
            crate::demo::run(args)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_missing_keys_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = 2\nlisten = \"127.0.0.1:7002\"\npeers = \"1=a:1,2=b:2\"\ndata = \"/d\"\nshards = 8\n")
            .expect("write");
        let args =
            StartArgs { config: Some(path.clone()), shards: Some(4), ..StartArgs::default() };
        let config = start_config(&args).expect("valid");
        assert_eq!((config.id, config.shards), (2, 4));
        let error =
            start_config(&StartArgs { id: Some(1), ..StartArgs::default() }).expect_err("no peers");
        assert_eq!(error.to_string(), "missing --peers (or `peers` in the config file)");
        std::fs::write(&path, "id = 2\nlisten = 7\n").expect("write");
        let error = start_config(&StartArgs { config: Some(path), ..StartArgs::default() })
            .expect_err("bad type");
        assert!(error.to_string().contains("node.toml"), "{error}");
    }
}
