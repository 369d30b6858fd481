//! The premise of the nemesis's pause (`chaos::nemesis::PAUSE_LENGTH_MAX`): a node whose links
//! are held for less than the HTTP/2 keep-alive's timeout (a ping every 0.5 s, answered within
//! 1 s) keeps its connections, so what its links held is delivered to the sockets that sent it
//! when the links are released; held for longer, its connections time out and close, as a
//! partition's do.

use std::cell::Cell;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chaos::nemesis::PAUSE_LENGTH_MAX;
use chaos::sim::cluster::ClusterSpec;
use chaos::sim::cluster::SimCluster;
use chaos::sim::cluster::host_name;

/// The node paused.
const PAUSED: u64 = 3;
/// When the short pause (as long as the nemesis's longest) begins, after the cluster settled.
const SHORT_AT: Duration = Duration::from_secs(5);
/// When the long pause begins, and how long it lasts.
const LONG_AT: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(3);
/// How often the sampler counts the paused node's connections.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Steps the simulation until `until` (simulated).
fn run_to(cluster: &mut SimCluster<'_>, until: Duration) {
    while cluster.sim.elapsed() < until {
        if let Err(error) = cluster.sim.step() {
            panic!("simulation failed: {error}");
        }
    }
}

/// The fewest established connections the samples of `[from, to)` saw.
fn fewest(samples: &[(Duration, usize)], from: Duration, to: Duration) -> usize {
    let during = samples.iter().filter(|(at, _)| *at >= from && *at < to);
    during.map(|(_, count)| *count).min().expect("samples in the window")
}

#[test]
fn a_pause_under_the_keep_alive_timeout_keeps_the_connections_and_a_longer_one_loses_them() {
    let mut cluster = SimCluster::new(ClusterSpec::new(11, 3));
    let samples: Rc<RefCell<Vec<(Duration, usize)>>> = Rc::default();
    let done = Rc::new(Cell::new(false));
    let (sampled, finished) = (samples.clone(), done.clone());
    cluster.client("sampler", async move {
        let paused = host_name(PAUSED);
        while !finished.get() {
            let at = turmoil::sim_elapsed().expect("in the simulation");
            let count = turmoil::established_tcp_stream_count_on(paused.as_str());
            sampled.borrow_mut().push((at, count));
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        Ok(())
    });
    run_to(&mut cluster, SHORT_AT);
    cluster.hold(PAUSED);
    run_to(&mut cluster, SHORT_AT + PAUSE_LENGTH_MAX);
    cluster.release(PAUSED);
    run_to(&mut cluster, LONG_AT);
    cluster.hold(PAUSED);
    run_to(&mut cluster, LONG_AT + LONG);
    cluster.release(PAUSED);
    run_to(&mut cluster, LONG_AT + LONG + Duration::from_secs(2));
    done.set(true);
    run_to(&mut cluster, LONG_AT + LONG + Duration::from_secs(3));

    let samples = samples.borrow();
    let before = fewest(&samples, SHORT_AT - Duration::from_secs(1), SHORT_AT);
    assert!(before >= 4, "node {PAUSED} talks to both peers both ways before the pause: {before}");
    let short = fewest(&samples, SHORT_AT, SHORT_AT + PAUSE_LENGTH_MAX + Duration::from_secs(1));
    assert_eq!(short, before, "a pause of {PAUSE_LENGTH_MAX:?} closed none of its connections");
    let long = fewest(&samples, LONG_AT, LONG_AT + LONG);
    eprintln!(
        "connections of node {PAUSED}: {before} before, {short} at fewest in the short pause, {long} in the long one"
    );
    assert!(long < before, "a pause of {LONG:?} timed connections out: {long} of {before} left");
}
