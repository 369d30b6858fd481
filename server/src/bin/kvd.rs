//! kvd: a node of the key-value store (`kvd start ...`), or a local demo cluster (`kvd demo`).

/// mimalloc rather than glibc's malloc: under load, allocation was about 13% of a node's CPU
/// with glibc (many threads freeing what others allocated); see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
