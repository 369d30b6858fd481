//! Who is calling whom, in which cluster: the headers on every node-to-node request, and the
//! receiver's check of them.
//!
//! Each node derives the cluster's *shape* (its shard count and node ids, which fix the key
//! split and every shard's replicas) from its own flags, and nothing else makes the nodes agree
//! on it. Without a check, a node started with another `--shards`, or with a `--peers` list that
//! gives one node's address to another id, would exchange Raft messages with the rest: a node
//! that answers for another id counts twice in a quorum, and two key splits put one key in two
//! shards. So every request a node sends to another carries
//!
//! ```text
//!   kv-from     the sender's node id                      (for the receiver's log)
//!   kv-to       the node id the sender means to reach     checked: must be the receiver's
//!   kv-cluster  the sender's shape, "shards=4 nodes=1,2,3" checked: must be the receiver's
//! ```
//!
//! and the receiver refuses one that fails a check with FAILED_PRECONDITION, saying why, and
//! logs a warning (at most one per [`REFUSAL_LOG_EVERY`]). A misconfigured node is then cut off
//! from the others as by a partition: it never takes part in a quorum, the shards it replicates
//! do not form in a new cluster (a fresh replica's vote gate waits for every other replica's
//! answer, `vote_gate`), and a running cluster carries on without it.
//!
//! A guard against mistakes, not against an attacker: the headers are not authenticated, and a
//! request without them (a tool such as the simulation's inspector, or a test playing a node) is
//! not checked. Every node always sends them.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Request;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use txn::types::NodeId;

/// The header naming the sender's node id.
pub const FROM: &str = "kv-from";
/// The header naming the node the sender means to reach.
pub const TO: &str = "kv-to";
/// The header carrying the sender's cluster shape.
pub const CLUSTER: &str = "kv-cluster";
/// The least time between two warnings about refused requests (a refused node retries every
/// few milliseconds).
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// A channel to another node's Peer service whose requests carry the [`Handshake`] headers.
pub type PeerChannel = InterceptedService<Channel, Handshake>;

/// The cluster shape as the headers carry it: the shard count and the sorted node ids.
pub fn shape(shards: u32, nodes: impl IntoIterator<Item = NodeId>) -> String {
    let mut nodes: Vec<NodeId> = nodes.into_iter().collect();
    nodes.sort_unstable();
    let nodes: Vec<String> = nodes.iter().map(NodeId::to_string).collect();
    format!("shards={shards} nodes={}", nodes.join(","))
}

/// The calling side: adds the headers to every request of a channel to one node.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// (from, to, cluster); `None` for a tool, which sends no headers.
    headers: Option<Arc<[AsciiMetadataValue; 3]>>,
}

impl Handshake {
    /// The headers of node `from`'s requests to node `to`, in a cluster of shape `cluster`
    /// ([`shape`]).
    pub fn new(from: NodeId, to: NodeId, cluster: &str) -> Handshake {
        let value = |text: String| {
            AsciiMetadataValue::try_from(text).expect("ids and shapes are printable ASCII")
        };
        let headers = [value(from.to_string()), value(to.to_string()), value(cluster.to_string())];
        Handshake { headers: Some(Arc::new(headers)) }
    }

    /// No headers: a tool that is not a node (its requests are not checked).
    pub fn tool() -> Handshake {
        Handshake { headers: None }
    }
}

impl Interceptor for Handshake {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(headers) = &self.headers {
            let [from, to, cluster] = &**headers;
            let metadata = request.metadata_mut();
            metadata.insert(FROM, from.clone());
            metadata.insert(TO, to.clone());
            metadata.insert(CLUSTER, cluster.clone());
        }
        Ok(request)
    }
}

/// The receiving side: refuses requests meant for another node or from another cluster shape.
#[derive(Clone, Debug)]
pub struct Admission {
    me: NodeId,
    cluster: Arc<str>,
    /// When a refusal was last logged.
    logged: Arc<Mutex<Option<Instant>>>,
}

impl Admission {
    /// The check of node `me`, in a cluster of shape `cluster` ([`shape`]).
    pub fn new(me: NodeId, cluster: &str) -> Admission {
        Admission { me, cluster: cluster.into(), logged: Arc::new(Mutex::new(None)) }
    }

    /// Why a request with these headers is refused, if it is.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), String> {
        let header = |name| metadata.get(name).map(|v| v.to_str().unwrap_or("(not ASCII)"));
        let from = header(FROM).unwrap_or("?");
        if let Some(to) = header(TO)
            && to != self.me.to_string()
        {
            return Err(format!(
                "a request from node {from} meant for node {to} reached node {}: node {from}'s \
                 --peers gives node {to} this node's address",
                self.me
            ));
        }
        if let Some(cluster) = header(CLUSTER)
            && cluster != &*self.cluster
        {
            return Err(format!(
                "node {from} belongs to a cluster of another shape ({cluster}) than node {} \
                 ({}): every node of a cluster needs the same --shards and --peers ids",
                self.me, self.cluster
            ));
        }
        Ok(())
    }

    /// Logs `why` unless a refusal was logged less than [`REFUSAL_LOG_EVERY`] ago.
    fn log(&self, why: &str) {
        let now = Instant::now();
        let mut logged = self.logged.lock().expect("refusal log lock");
        if logged.is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY) {
            *logged = Some(now);
            tracing::warn!("refused a peer request: {why}");
        }
    }
}

impl Interceptor for Admission {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match self.check(request.metadata()) {
            Ok(()) => Ok(request),
            Err(why) => {
                self.log(&why);
                Err(Status::failed_precondition(why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(handshake: Handshake) -> MetadataMap {
        let mut handshake = handshake;
        handshake.call(Request::new(())).expect("never refuses").metadata().clone()
    }

    #[test]
    fn the_shape_names_the_shards_and_the_sorted_ids() {
        assert_eq!(shape(4, [3, 1, 2]), "shards=4 nodes=1,2,3");
        assert_ne!(shape(4, [1, 2, 3]), shape(8, [1, 2, 3]));
        assert_ne!(shape(4, [1, 2, 3]), shape(4, [1, 2, 4]));
    }

    #[test]
    fn a_request_from_a_node_of_the_same_cluster_to_this_node_is_admitted() {
        let cluster = shape(4, [1, 2, 3]);
        let admission = Admission::new(2, &cluster);
        assert_eq!(admission.check(&headers_of(Handshake::new(1, 2, &cluster))), Ok(()));
        assert_eq!(admission.check(&headers_of(Handshake::tool())), Ok(()));
    }

    #[test]
    fn a_request_meant_for_another_node_is_refused() {
        let cluster = shape(4, [1, 2, 3]);
        let why = Admission::new(3, &cluster)
            .check(&headers_of(Handshake::new(1, 2, &cluster)))
            .expect_err("refused");
        assert!(why.contains("meant for node 2 reached node 3"), "{why}");
    }

    #[test]
    fn a_request_from_another_shape_is_refused_and_says_both() {
        let ours = shape(4, [1, 2, 3]);
        let theirs = shape(8, [1, 2, 3]);
        let mut admission = Admission::new(1, &ours);
        let status = admission
            .call(request_with(headers_of(Handshake::new(3, 1, &theirs))))
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains(&theirs) && status.message().contains(&ours));
    }

    fn request_with(metadata: MetadataMap) -> Request<()> {
        let mut request = Request::new(());
        *request.metadata_mut() = metadata;
        request
    }
}
