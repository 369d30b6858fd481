//! kvd: a node of the key-value store (`kvd start ...`), or a local demo cluster (`kvd demo`).

fn main() -> std::process::ExitCode {
    server::cli::main()
}
