//! The chaos runner: simulated runs of the whole cluster under a nemesis, one line per seed.
//!
//! `chaos --seeds N [--from F] [--seed S] [--nodes 3|5] [--secs T] [--jobs J] [--canary NAME]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chaos::plan::Plan;
use chaos::regressions::REGRESSION_SEEDS;
use chaos::run::RunReport;
use chaos::run::run;
use clap::Parser;
use replication::canary::Canary;

/// The chaos runner's command line.
#[derive(Parser)]
#[command(
    name = "chaos",
    about = "Deterministic simulation of the cluster under faults, with history checks"
)]
struct Args {
    /// Run seeds 1..=N (plus the regression seeds).
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Start at this seed instead of 1 (to explore seeds beyond those CI runs).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Run only this seed (to reproduce a failure).
    #[arg(long)]
    seed: Option<u64>,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    nodes: u64,
    /// Simulated seconds of faults and workload per run.
    #[arg(long, default_value_t = chaos::plan::SAFETY_SECS_DEFAULT)]
    secs: u64,
    /// Runs at a time.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Switch on a deliberately broken variant; the runs are then expected to fail.
    #[arg(long)]
    canary: Option<String>,
    /// Deliver every N-th node-to-node call that could be resent after a broken stream twice,
    /// at once (a resend while the first delivery still runs); 0: never.
    #[arg(long, default_value_t = 0)]
    duplicate_calls: u64,
    /// With --duplicate-calls, deliver each copy 1 to MS milliseconds late instead of at once
    /// (a first delivery whose handler ran late, often after its transaction ended).
    #[arg(long, default_value_t = 0, requires = "duplicate_calls")]
    duplicate_late_ms: u64,
    /// Run each seed twice and require the same trace.
    #[arg(long)]
    check_determinism: bool,
    /// Where failing runs' histories go.
    #[arg(long, default_value = "target/chaos")]
    out: PathBuf,
}

fn line(report: &RunReport) -> String {
    let stats = &report.stats;
    let aborts: Vec<String> =
        stats.aborted.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!(
        "seed {}: nodes={} clients={}{} faults=[{}] committed={} aborted={} ({}) unknown={} (forgotten {}) registers=[{}] sim={:.1}s wall={:.1}s trace={:016x}",
        report.plan.seed,
        report.plan.nodes,
        report.plan.clients,
        if report.plan.lease_reads { "" } else { " lease-reads=off" },
        report.faults,
        stats.committed,
        stats.aborted_total(),
        aborts.join(", "),
        stats.unknown,
        stats.forgotten,
        report.registers,
        report.simulated.as_secs_f64(),
        report.wall.as_secs_f64(),
        report.trace_hash
    )
}

/// What a run reports when it catches `canary`: the checks meant to see it (a line of the run's
/// problems contains one of these). In debug builds (CI's) invariant assertions stop some runs
/// first: the state machine's (no two prepared transactions write one key: "lock table bug")
/// and openraft's own check of a log that went back ("log_state_reader"). Measured on seeds
/// 1-12 (single-id-per-delivery 1-24 with late copies), 2026-12-06, release and debug builds;
/// docs/testing.md lists the canaries and their checks.
fn canary_findings(canary: Canary) -> &'static [&'static str] {
    match canary {
        Canary::None => &[],
        Canary::AckBeforeFsync => &[
            "final reads: lost",
            "history: INVALID",
            "registers: stale",
            "raft_state/log_state_reader",
        ],
        Canary::ReleaseLocksAtPrepare => {
            &["bank", "final reads: lost", "history: INVALID", "lock table bug"]
        }
        Canary::FollowerSequentialRead => {
            &["registers: stale read", "registers: non-monotonic", "history: INVALID"]
        }
        Canary::SkipSafeTimeWait => {
            &["registers: read-your-writes", "INVALID under causal", "snapshots are not cuts"]
        }
        Canary::YesVoterAbortsAlone => &["bank", "final reads: lost", "history: INVALID"],
        Canary::ReleaseSharedBeforeEndLocks => &["history: INVALID"],
        Canary::SingleIdPerDelivery => {
            &["registers: stale read", "registers: non-monotonic", "registers: read-your-writes"]
        }
        Canary::ScanReadsBeforeItsLock => &["final reads: lost", "history: INVALID"],
        Canary::WriteForgetsItsToken => &["registers: read-your-writes"],
        Canary::ReadSkipsTombstones => &["registers: stale read", "registers: read-your-writes"],
        Canary::ReadSkipsOwnWrite => &["internal"],
        Canary::CloseToTheMillisecond => &["snapshot read after healing took"],
        Canary::FracturedSnapshot => &["INVALID under causal", "snapshots are not cuts"],
        Canary::NoDeadlockProbes => &["deadlocks: "],
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "off".into());
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let canary = match args.canary.as_deref().map(|name| (name, Canary::from_name(name))) {
        None => Canary::None,
        Some((_, Some(canary))) => canary,
        Some((name, None)) => {
            let names: Vec<&str> = Canary::ALL.iter().map(|(_, n)| *n).collect();
            eprintln!("chaos: unknown canary {name:?}; canaries: {}", names.join(", "));
            return ExitCode::from(2);
        }
    };
    if args.from == 0 || args.from > args.seeds {
        eprintln!("chaos: --from must be between 1 and --seeds ({})", args.seeds);
        return ExitCode::from(2);
    }
    match args.seed {
        Some(seed) => {
            let mut plan = Plan::new(seed, args.nodes, args.secs, canary);
            plan.duplicate_every = args.duplicate_calls;
            plan.duplicate_late_ms = args.duplicate_late_ms;
            run_one(&args, plan)
        }
        None => run_many(&args, canary),
    }
}

/// A run may take this long in wall time at least before the watchdog fails it...
pub const WALL_LIMIT_MIN: Duration = Duration::from_secs(120);
/// ...or this many wall seconds per simulated second, if more (runs take well under one).
pub const WALL_SECS_PER_SIM_SEC: u64 = 2;

/// Fails the run (exit 1, with its line) if it is still going after its wall-time limit: a
/// task that spins without waiting never lets simulated time pass, and the run would hang
/// (as a causal read did at a replica whose Raft group had stopped, 2026-12-04).
fn watchdog(args: &Args, seed: u64) {
    let runs = if args.check_determinism { 2 } else { 1 };
    let limit = WALL_LIMIT_MIN.max(Duration::from_secs(WALL_SECS_PER_SIM_SEC * args.secs)) * runs;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        println!(
            "seed {seed}: FAILED\n  did not finish within {} s of wall time: a task that \
             spins without waiting stops simulated time",
            limit.as_secs()
        );
        std::process::exit(1);
    });
}

/// Runs one seed in this process; prints its line (and problems); exit 1 if it failed.
fn run_one(args: &Args, plan: Plan) -> ExitCode {
    watchdog(args, plan.seed);
    let report = run(&plan);
    let mut text = line(&report);
    let mut ok = report.passed();
    if ok && args.check_determinism {
        let again = run(&plan);
        if again.trace_hash != report.trace_hash {
            ok = false;
            text.push_str(&format!(
                "\n  nondeterminism: trace {:016x} then {:016x}",
                report.trace_hash, again.trace_hash
            ));
        }
    }
    if ok {
        println!("{text}: ok");
        return ExitCode::SUCCESS;
    }
    let _ = std::fs::create_dir_all(&args.out);
    let history = args.out.join(format!("seed-{}.jsonl", plan.seed));
    let locking = args.out.join(format!("seed-{}.locking.jsonl", plan.seed));
    let nemesis = args.out.join(format!("seed-{}.nemesis.txt", plan.seed));
    let mut out = format!("{text}: FAILED");
    for problem in &report.problems {
        out.push_str(&format!("\n  {problem}"));
    }
    for (path, contents) in [
        (&history, &report.history),
        (&locking, &report.locking_history),
        (&nemesis, &report.nemesis_log.join("\n")),
    ] {
        if let Err(error) = std::fs::write(path, contents) {
            out.push_str(&format!("\n  could not save {}: {error}", path.display()));
        }
    }
    out.push_str(&format!(
        "\n  history: {} (kvcheck --model causal), {} (kvcheck --model strict-serializable)  \
         nemesis: {}",
        history.display(),
        locking.display(),
        nemesis.display()
    ));
    println!("{out}");
    ExitCode::FAILURE
}

/// The command that reproduces one seed.
fn reproduce(args: &Args, seed: u64, nodes: u64) -> String {
    let mut extra = args.canary.as_deref().map(|c| format!(" --canary {c}")).unwrap_or_default();
    if args.duplicate_calls > 0 {
        extra.push_str(&format!(" --duplicate-calls {}", args.duplicate_calls));
        if args.duplicate_late_ms > 0 {
            extra.push_str(&format!(" --duplicate-late-ms {}", args.duplicate_late_ms));
        }
    }
    format!(
        "cargo run --release -p chaos --bin chaos -- --seed {seed} --nodes {nodes} --secs {}{extra}",
        args.secs
    )
}

/// Runs many seeds, each in a child process (a panic in one run cannot take the others down),
/// `--jobs` at a time.
fn run_many(args: &Args, canary: Canary) -> ExitCode {
    let range = args.from..=args.seeds;
    let mut seeds: Vec<(u64, u64)> = range.clone().map(|seed| (seed, args.nodes)).collect();
    if canary == Canary::None {
        let covered = |seed: u64, nodes: u64| range.contains(&seed) && nodes == args.nodes;
        seeds.extend(
            REGRESSION_SEEDS
                .iter()
                .filter(|(seed, nodes, _)| !covered(*seed, *nodes))
                .map(|(seed, nodes, _)| (*seed, *nodes)),
        );
    }
    let total = seeds.len();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("chaos: cannot find my own executable: {error}");
            return ExitCode::from(2);
        }
    };
    let queue = std::sync::Mutex::new(seeds.into_iter());
    let failed = std::sync::Mutex::new(Vec::new());
    // Seeds whose failure is one of the findings the canary is meant to cause.
    let caught = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((seed, nodes)) = queue.lock().expect("queue").next() else { return };
                    let mut command = std::process::Command::new(&exe);
                    command
                        .args([
                            "--seed",
                            &seed.to_string(),
                            "--nodes",
                            &nodes.to_string(),
                            "--secs",
                            &args.secs.to_string(),
                        ])
                        .arg("--out")
                        .arg(&args.out);
                    if let Some(canary) = &args.canary {
                        command.args(["--canary", canary]);
                    }
                    if args.check_determinism {
                        command.arg("--check-determinism");
                    }
                    if args.duplicate_calls > 0 {
                        command.args(["--duplicate-calls", &args.duplicate_calls.to_string()]);
                        let late = args.duplicate_late_ms.to_string();
                        command.args(["--duplicate-late-ms", &late]);
                    }
                    let output = command.output();
                    let (passed, mut text) = match output {
                        Ok(output) => {
                            let stdout =
                                String::from_utf8_lossy(&output.stdout).trim_end().to_string();
                            if stdout.is_empty() {
                                let stderr = String::from_utf8_lossy(&output.stderr);
                                let panic: Vec<&str> = stderr
                                    .lines()
                                    .filter(|l| {
                                        l.contains("panicked at")
                                            || l.starts_with("t") && l.contains("bug")
                                    })
                                    .take(4)
                                    .collect();
                                (
                                    false,
                                    format!(
                                        "seed {seed}: the run crashed ({})\n  {}",
                                        output.status,
                                        panic.join("\n  ")
                                    ),
                                )
                            } else {
                                (output.status.success(), stdout)
                            }
                        }
                        Err(error) => (false, format!("seed {seed}: cannot run: {error}")),
                    };
                    if !passed {
                        if canary_findings(canary).iter().any(|finding| text.contains(finding)) {
                            caught.lock().expect("caught").push(seed);
                        }
                        text.push_str(&format!("\n  reproduce: {}", reproduce(args, seed, nodes)));
                        failed.lock().expect("failed").push(seed);
                    }
                    println!("{text}");
                }
            });
        }
    });
    let failed = failed.into_inner().expect("failed");
    println!("{} passed, {} failed", total - failed.len(), failed.len());
    if canary != Canary::None {
        // A canary must be caught, by the check meant to catch it: a run that fails otherwise
        // (a hang, a crash, an unsettled shard) does not count, so a canary whose effect
        // drifted away from its checker shows as not caught.
        let caught = caught.into_inner().expect("caught");
        let findings = canary_findings(canary).join("\", \"");
        return if caught.is_empty() {
            println!(
                "canary {} was NOT caught (no run found \"{findings}\"): the harness went blind",
                canary.name()
            );
            ExitCode::FAILURE
        } else {
            println!(
                "canary {} caught in {} of {total} runs ({} failed)",
                canary.name(),
                caught.len(),
                failed.len()
            );
            ExitCode::SUCCESS
        };
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
