//! kvd: a node of the key-value store (`kvd start ...`), or a local demo cluster (`kvd demo`).

/// mimalloc instead of glibc's malloc: a node allocates and frees small buffers for every RPC,
/// Raft entry and redb page, and glibc spent 12-15% of a node's CPU on them under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    server::cli::main()
}

/// Turns transparent huge pages off for this process, as databases commonly recommend (Redis,
/// MongoDB, TiKV): mimalloc asks for them (`madvise`), and the first touch of each 2 MiB page
/// zeroes all of it, and may compact memory, on whichever thread allocated: a state-database
/// commit that usually takes 0.3 ms took 5-40 ms of CPU now and then, and every write of the
/// node's shards waited behind it (`put` p99 at 64 clients 26-29 ms with them, 14 ms without;
/// docs/benchmarks.md, 2026-12-05). Pages already faulted in keep their size; every later fault
/// is a 4 KiB page. Linux only; where the call fails (kernels before 3.15) nothing changes but
/// the tail latency, so the node starts anyway.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
