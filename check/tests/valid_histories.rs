//! Histories every model must accept, and the edge cases of TESTING §7a item 1 that are about
//! outcomes rather than one anomaly: info observed or not, fail observed, empty, invokes only.

mod common;

use check::history::History;
use check::{AnomalyKind as K, Model, check};
use common::{H, must_find, must_pass};

#[test]
fn empty_history_is_valid_everywhere() {
    let history = History::parse_jsonl("").expect("empty is well-formed");
    for model in Model::ALL {
        let report = check(&history, model);
        must_pass(&report);
        assert_eq!(report.txns.total, 0);
    }
}

#[test]
fn invokes_only_is_valid_everywhere() {
    let mut h = H::new();
    h.invoke(1, "x+1 y=?").invoke(2, "x=?").invoke(3, "y+2");
    for model in Model::ALL {
        let report = h.check(model);
        must_pass(&report);
        assert_eq!(report.txns.info, 3, "never completed counts as info");
    }
}

#[test]
fn sequential_appends_and_reads_are_valid_everywhere() {
    let mut h = H::new();
    h.txn(1, "x+1 y=[]");
    h.txn(2, "x=[1] y+1");
    h.invoke(1, "x+2 y=?").invoke(2, "x=?");
    h.ok(2, "x=[1]").ok(1, "x+2 y=[1]");
    h.txn(3, "x=[1,2] y=[1] x+3 x=[1,2,3]");
    for model in Model::ALL {
        must_pass(&h.check(model));
    }
}

#[test]
fn info_txn_whose_append_is_read_counts_as_committed() {
    // T0 (info) appended to x and y; T2 saw its x but not its y: read skew, only a cycle if
    // T0 counts as committed.
    let mut h = H::new();
    h.invoke(1, "x+1 y+1").info(1);
    h.txn(2, "x=[1] y=[]");
    let report = h.check(Model::Serializable);
    assert_eq!(report.txns.info_observed, 1);
    must_find(&report, K::GSingle);

    // Read in full, it is simply a committed transaction.
    let mut h = H::new();
    h.invoke(1, "x+1 y+1").info(1);
    h.txn(2, "x=[1] y=[1]");
    h.txn(3, "x=[1] x+2");
    for model in Model::ALL {
        must_pass(&h.check(model));
    }
}

#[test]
fn info_never_observed_adds_no_edges() {
    let mut h = H::new();
    h.invoke(1, "x+1 y+1").info(1);
    h.txn(2, "x=[] y=[]");
    h.txn(3, "x+2");
    h.txn(4, "x=[2] y=[]");
    for model in Model::ALL {
        let report = h.check(model);
        must_pass(&report);
        assert_eq!(report.txns.info_observed, 0);
    }
}

#[test]
fn failed_append_never_observed_is_fine() {
    let mut h = H::new();
    h.failed(1, "x+1");
    h.txn(2, "x=[]");
    h.txn(2, "x+2");
    h.txn(3, "x=[2]");
    for model in Model::ALL {
        must_pass(&h.check(model));
    }
}

#[test]
fn integer_keys_are_accepted_and_rendered_back() {
    let text = concat!(
        r#"{"index":0,"time":1500,"process":3,"type":"invoke","f":"txn","value":[["append",7,1],["r","y",null]]}"#,
        "\n",
        r#"{"index":1,"time":2900,"process":3,"type":"ok","f":"txn","value":[["append",7,1],["r","y",[]]],"extra":"ignored"}"#,
        "\n",
        r#"{"index":2,"time":3000,"process":4,"type":"invoke","f":"txn","value":[["r","7",null]]}"#,
        "\n",
        r#"{"index":3,"time":3100,"process":4,"type":"ok","f":"txn","value":[["r","7",[1]]]}"#,
        "\n",
    );
    let history = History::parse_jsonl(text).expect("well-formed");
    for model in Model::ALL {
        must_pass(&check(&history, model));
    }
    assert!(history.to_jsonl().contains(r#"["append",7,1]"#));
}

#[test]
fn stale_read_across_processes_is_causal_but_not_strict() {
    let mut h = H::new();
    h.txn(1, "x+1");
    h.txn(2, "x=[]");
    h.txn(2, "x=[1]");
    must_pass(&h.check(Model::Causal));
    must_pass(&h.check(Model::Serializable));
    must_find(&h.check(Model::StrictSerializable), K::GSingleRealtime);
}

#[test]
fn long_fork_is_causal_but_not_serializable() {
    // Two independent appends seen in opposite orders by two read-only transactions: causal
    // consistency allows concurrent writes to be seen in different orders; serializability
    // does not.
    let mut h = H::new();
    h.invoke(1, "x+1").invoke(2, "y+1").invoke(3, "x=? y=?").invoke(4, "x=? y=?");
    h.ok(1, "x+1").ok(3, "x=[1] y=[]");
    h.ok(2, "y+1").ok(4, "x=[] y=[1]");
    must_pass(&h.check(Model::Causal));
    let report = h.check(Model::Serializable);
    assert!(!report.valid, "{report}");
    assert!(report.has(K::GNonadjacent), "{report}");
}
