//! The simulated world: network, disk and clock seams, and the cluster built on them.
//!
//! - [`net`]: tonic over turmoil's TCP.
//! - [`disk`]: redb over turmoil's file system, with a crash kill switch.
//! - [`clock`]: simulated wall time with skew.
//! - [`cluster`]: the nodes as turmoil hosts, and the driver's levers.

pub mod clock;
pub mod cluster;
pub mod disk;
pub mod net;
