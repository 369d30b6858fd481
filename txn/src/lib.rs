//! Transaction rules, deterministic and free of I/O.
//!
//! Everything in this crate decides; nothing in it waits, sleeps, reads a clock or talks to the
//! network. The server drives it (RPCs, timers, Raft) and the simulation runs it unchanged.
//!
//! - [`types`]: ids, keys, timestamps.
//! - [`clock`]: the hybrid logical clock (physical time is passed in).
//! - [`lock`]: the lock table of one shard leader (strict two-phase locking).
//! - [`deadlock`]: edge-chasing deadlock detection (Chandy-Misra-Haas, AND model).
//! - [`command`]: the commands a shard replicates through Raft.
//! - [`state`]: a shard's MVCC state in redb and the deterministic apply of commands.

pub mod clock;
pub mod command;
pub mod deadlock;
pub mod lock;
pub mod state;
pub mod types;
