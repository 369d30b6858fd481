//! kvsh: the shell of the key-value store. See `kvsh --help` and `HELP` inside.

use clap::Parser;
use client::Consistency;
use client::shell::repl::Input;
use client::shell::repl::ShellOptions;

/// The kvsh command line.
#[derive(Parser)]
#[command(name = "kvsh", version, about = "Shell for the replicated transactional key-value store")]
struct Args {
    /// Node addresses, HOST:PORT[,HOST:PORT...].
    #[arg(long, default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003")]
    connect: String,
    /// The session's consistency: sequential or causal (default: the server's).
    #[arg(long, ignore_case = true, value_parser = ["sequential", "causal"])]
    consistency: Option<String>,
    /// Run these statements (separated by `;`) and exit.
    #[arg(short = 'c', conflicts_with = "file")]
    command: Option<String>,
    /// Run the statements of this file, line by line, and exit.
    #[arg(short = 'f')]
    file: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let connect: Vec<String> =
        args.connect.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
    if connect.is_empty() {
        eprintln!("kvsh: --connect needs at least one HOST:PORT");
        std::process::exit(2);
    }
    let consistency = args.consistency.as_deref().map(|c| match c.eq_ignore_ascii_case("causal") {
        true => Consistency::Causal,
        false => Consistency::Sequential,
    });
    let input = match (args.command, args.file) {
        (Some(command), _) => Input::Command(command),
        (None, Some(file)) => Input::File(file),
        (None, None) => Input::Stdin,
    };
    std::process::exit(client::shell::repl::run_blocking(ShellOptions {
        connect,
        consistency,
        input,
    }));
}
