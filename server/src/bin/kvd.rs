//! kvd: a node of the key-value store (`kvd start ...`), or a local demo cluster (`kvd demo`).

/// mimalloc instead of glibc's malloc: a loaded node allocates per message, per entry and per
/// redb page, and glibc's allocator cost about a tenth of its CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
