//! `kvd demo`: a local cluster on loopback and a shell connected to it, in one command.
//!
//! The nodes run in this process, each with its own data directory under `--data` (a temporary
//! directory, deleted at exit, unless given), on ports 7001, 7002, ... when free (other free
//! ports otherwise). Their logs go to `kvd-demo.log` in the data directory so that the shell
//! stays readable. When the shell ends, the nodes stop.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use client::connector::TcpConnector;
use client::shell::repl::Input;
use client::shell::repl::ShellOptions;
use openraft::async_runtime::WatchReceiver;
use replication::store::Executor;
use tonic::transport::server::TcpIncoming;

use crate::clock::SystemClock;
use crate::config::Consistency;
use crate::config::Limits;
use crate::config::NodeConfig;
use crate::config::Timing;
use crate::node::Node;
use crate::node::StartOptions;

/// The first port the demo tries.
pub const DEMO_BASE_PORT: u16 = 7001;
/// The most nodes a demo runs.
pub const DEMO_NODES_MAX: u64 = 9;
/// How long the demo waits for every shard to elect a leader.
pub const LEADERS_WAIT: Duration = Duration::from_secs(20);

/// `kvd demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Number of shards.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Keep the data here (default: a temporary directory, deleted at exit).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

fn free_ports(count: u64) -> Vec<u16> {
    let preferred: Vec<u16> = (0..count).map(|i| DEMO_BASE_PORT + i as u16).collect();
    let all_free = preferred.iter().all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok());
    if all_free {
        return preferred;
    }
    // Hold every listener until all ports are chosen, so that no port is picked twice.
    let listeners: Vec<TcpListener> =
        (0..count).filter_map(|_| TcpListener::bind(("127.0.0.1", 0)).ok()).collect();
    listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.port()).collect()
}

/// Runs the demo; returns the shell's exit status.
pub fn run(args: DemoArgs) -> ExitCode {
    if args.nodes == 0 || args.nodes > DEMO_NODES_MAX {
        eprintln!("kvd demo: error: --nodes must be between 1 and {DEMO_NODES_MAX}");
        return ExitCode::from(2);
    }
    // Checked here too, before anything is created, so that it exits as `kvd start` does.
    if args.shards == 0 || args.shards > crate::topology::SHARDS_MAX {
        eprintln!(
            "kvd demo: error: --shards must be between 1 and {}",
            crate::topology::SHARDS_MAX
        );
        return ExitCode::from(2);
    }
    let (data, _temporary) = match &args.data {
        Some(dir) => (dir.clone(), None),
        None => match tempfile::Builder::new().prefix("kvd-demo-").tempdir() {
            Ok(dir) => (dir.path().to_path_buf(), Some(dir)),
            Err(error) => {
                eprintln!("kvd demo: error: cannot create a temporary directory: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Err(error) = std::fs::create_dir_all(&data) {
        eprintln!("kvd demo: error: cannot create {}: {error}", data.display());
        return ExitCode::FAILURE;
    }
    let log = data.join("kvd-demo.log");
    if let Ok(file) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Arc::new(file))
            .try_init();
    }
    let ports = free_ports(args.nodes);
    if ports.len() as u64 != args.nodes {
        eprintln!("kvd demo: error: not enough free ports on 127.0.0.1");
        return ExitCode::FAILURE;
    }
    let peers: BTreeMap<u64, String> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| (i as u64 + 1, format!("127.0.0.1:{port}")))
        .collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kvd demo: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = runtime.block_on(start_nodes(&peers, args.shards, &data));
    let nodes = match started {
        Ok(nodes) => nodes,
        Err(error) => {
            eprintln!("kvd demo: error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let connect: Vec<String> = peers.values().cloned().collect();
    let kept = if args.data.is_some() { "kept" } else { "deleted at exit" };
    let banner = format!(
        "kvd demo: {} nodes on {}, {} shards; data in {} ({kept}); logs in {}\n\
         another shell: cargo run --release --bin kvsh -- --connect {}",
        args.nodes,
        connect.join(","),
        args.shards,
        data.display(),
        log.display(),
        connect.join(",")
    );
    // With piped input the standard output is the statements' results alone, one line each,
    // as `kvsh`'s: a script reading them must not meet the banner first.
    if std::io::stdin().is_terminal() {
        println!("{banner}");
    } else {
        eprintln!("{banner}");
    }
    let status = client::shell::repl::run_blocking(ShellOptions {
        connect,
        consistency: None,
        input: Input::Stdin,
    });
    runtime.block_on(async {
        for node in &nodes {
            node.shutdown().await;
        }
    });
    drop(nodes);
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(status as u8)
}

async fn start_nodes(
    peers: &BTreeMap<u64, String>,
    shards: u32,
    data: &std::path::Path,
) -> Result<Vec<Arc<Node>>, String> {
    let mut nodes = Vec::new();
    for (id, addr) in peers {
        let config = NodeConfig {
            id: *id,
            listen: addr.clone(),
            peers: peers.clone(),
            data: data.join(format!("node{id}")),
            shards,
            consistency: Consistency::default(),
            limits: Limits::default(),
            timing: Timing::default(),
        }
        .validate()
        .map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let options = StartOptions {
            connector: Arc::new(TcpConnector),
            physical: Arc::new(SystemClock),
            executor: Executor::Thread,
            database: None,
        };
        let node = replication::types::with_seed(
            crate::cli::random_seed() ^ id,
            Node::start(config, options),
        )
        .await
        .map_err(|e| format!("node {id}: {e}"))?;
        let router = node.router();
        tokio::spawn(async move {
            router.serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))).await
        });
        nodes.push(node);
    }
    // Wait until every shard has a leader, so that the first statements do not wait.
    let deadline = tokio::time::Instant::now() + LEADERS_WAIT;
    loop {
        let all_led = nodes.iter().all(|node| {
            node.shards().all(|s| s.raft.metrics().borrow_watched().current_leader.is_some())
        });
        if all_led || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(nodes)
}
