//! kvbench: a closed-loop load generator for kvd. See `kvbench --help` and the `bench` crate.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = bench::Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kvbench: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(bench::run(&args)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("kvbench: {error:#}");
            return ExitCode::from(2);
        }
    };
    for (kind, (count, first)) in &report.tally.error_kinds {
        eprintln!("kvbench: {count} {kind} errors, the first: {first}");
    }
    println!("{}", report.summary_line());
    if args.json {
        println!("{}", report.to_json());
    }
    // Shut down without waiting for stray tasks (a statement still waiting on a lock).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match &report.bank {
        Some(bank) if !bank.ok() => {
            eprintln!("kvbench: bank total is {:?}, expected {}", bank.total, bank.expected);
            ExitCode::from(1)
        }
        // Nothing finished inside the window (a window too short, or only failures): a
        // measurement of nothing. The deadlock workload's measure is its broken cycles.
        _ if report.tally.ops == 0 && report.tally.deadlocks == 0 => {
            eprintln!("kvbench: no operation finished inside the window without an error");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}
