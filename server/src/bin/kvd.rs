//! kvd: a node of the key-value store (`kvd start ...`), or a local demo cluster (`kvd demo`).

/// mimalloc instead of glibc's malloc: a node allocates and frees small buffers for every RPC,
/// Raft entry and redb page, and glibc spent 12-15% of a node's CPU on them under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
