//! The chaos runner: simulated runs of the whole cluster under a nemesis, one line per seed.
//!
//! `chaos --seeds N [--seed S] [--nodes 3|5] [--secs T] [--jobs J] [--canary NAME]`

use std::path::PathBuf;
use std::process::ExitCode;

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
        "seed {}: nodes={} clients={} faults=[{}] committed={} aborted={} ({}) unknown={} sim={:.1}s wall={:.1}s trace={:016x}",
        report.plan.seed,
        report.plan.nodes,
        report.plan.clients,
        report.faults,
        stats.committed,
        stats.aborted_total(),
        aborts.join(", "),
        stats.unknown,
        report.simulated.as_secs_f64(),
        report.wall.as_secs_f64(),
        report.trace_hash
    )
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
    let mut plans: Vec<Plan> = match args.seed {
        Some(seed) => vec![Plan::new(seed, args.nodes, args.secs, canary)],
        None => {
            (1..=args.seeds).map(|seed| Plan::new(seed, args.nodes, args.secs, canary)).collect()
        }
    };
    if args.seed.is_none() && canary == Canary::None {
        for (seed, nodes, _) in REGRESSION_SEEDS {
            plans.push(Plan::new(*seed, *nodes, args.secs, canary));
        }
    }
    // A canary is process-wide: canary runs go one at a time.
    let jobs = if canary == Canary::None { args.jobs.max(1) } else { 1 };
    let total = plans.len();
    let queue = std::sync::Mutex::new(plans.into_iter());
    let failed = std::sync::Mutex::new(Vec::new());
    let passed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(plan) = queue.lock().expect("queue").next() else { return };
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
                    passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    println!("{text}: ok");
                } else {
                    let _ = std::fs::create_dir_all(&args.out);
                    let history = args.out.join(format!("seed-{}.jsonl", plan.seed));
                    let nemesis = args.out.join(format!("seed-{}.nemesis.txt", plan.seed));
                    let _ = std::fs::write(&history, &report.history);
                    let _ = std::fs::write(&nemesis, report.nemesis_log.join("\n"));
                    let mut out = format!("{text}: FAILED");
                    for problem in &report.problems {
                        out.push_str(&format!("\n  {problem}"));
                    }
                    let canary_flag = args.canary.as_deref().map(|c| format!(" --canary {c}")).unwrap_or_default();
                    out.push_str(&format!(
                        "\n  history: {}  nemesis: {}\n  reproduce: cargo run --release -p chaos --bin chaos -- --seed {} --nodes {} --secs {}{canary_flag}",
                        history.display(),
                        nemesis.display(),
                        plan.seed,
                        plan.nodes,
                        args.secs
                    ));
                    println!("{out}");
                    failed.lock().expect("failed").push(plan.seed);
                }
            });
        }
    });
    let failed = failed.into_inner().expect("failed");
    let passed = passed.into_inner();
    println!("{passed} passed, {} failed", failed.len());
    if canary != Canary::None {
        // A canary must be caught: every seed failing is the expected outcome.
        return if failed.is_empty() {
            println!("canary {} was NOT caught: the harness went blind", canary.name());
            ExitCode::FAILURE
        } else {
            println!("canary {} caught in {} of {total} runs", canary.name(), failed.len());
            ExitCode::SUCCESS
        };
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
