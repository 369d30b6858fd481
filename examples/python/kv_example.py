"""A kvd client in Python, generated from the public API (proto/proto/kv/v1/kv.proto).

It shows that a client in another language can be generated from the .proto and used,
transactions included, and it is the test of that claim: tests/tests/other_language.rs runs it
against a real cluster and checks its exit status and its lines.

    python3 -m venv target/python-env
    target/python-env/bin/pip install -r examples/python/requirements.txt
    target/python-env/bin/python examples/python/kv_example.py --connect 127.0.0.1:7001

Each step prints one line and checks what the API promises; the first broken promise stops
the script with exit status 1. The stubs are generated at start-up by grpc_tools.protoc into a
temporary directory, so nothing generated is kept in the repository.
"""

import argparse
import importlib
import os
import sys
import tempfile
import threading

import grpc
from grpc_tools import protoc

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto")
# Every call gets a deadline: a call without one could wait forever on a partitioned cluster.
DEADLINE_S = 10.0


def generate_stubs():
    """Compiles kv.proto into modules in a temporary directory and imports them."""
    out = tempfile.mkdtemp(prefix="kv-stubs-")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.join(PROTO_ROOT, "kv", "v1", "kv.proto"),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed on kv.proto")
    sys.path.insert(0, out)
    return importlib.import_module("kv.v1.kv_pb2"), importlib.import_module("kv.v1.kv_pb2_grpc")


pb, pb_grpc = generate_stubs()


class Broken(Exception):
    """The cluster answered something the API does not promise."""


def check(condition, what):
    if not condition:
        raise Broken(what)


def abort_info(error):
    """The abort reason and retryability a failed call carries in its trailing metadata."""
    metadata = dict(error.trailing_metadata() or ())
    return metadata.get("kv-abort-reason"), metadata.get("kv-retryable")


def one_statement(stub):
    put = stub.Write(pb.WriteRequest(key=b"py-alice", value=b"100"), timeout=DEADLINE_S)
    check(put.causal_token > 0, "a one-statement write returns its commit timestamp")
    got = stub.Read(pb.ReadRequest(key=b"py-alice"), timeout=DEADLINE_S)
    check(got.found and got.value == b"100", f"the write reads back, got {got}")
    print(f"one-statement WRITE then READ: {got.value.decode()}")


def transfer(stub):
    """Moves 10 from py-alice to py-bob in one transaction, then asks TxnStatus about it."""
    txn = stub.Begin(pb.BeginRequest(), timeout=DEADLINE_S).txn
    alice = stub.Read(pb.ReadRequest(txn=txn, key=b"py-alice", for_update=True), timeout=DEADLINE_S)
    balance = int(alice.value)
    first = stub.Write(
        pb.WriteRequest(txn=txn, key=b"py-alice", value=str(balance - 10).encode()),
        timeout=DEADLINE_S,
    )
    stub.Write(pb.WriteRequest(txn=txn, key=b"py-bob", value=b"10"), timeout=DEADLINE_S)
    done = stub.Commit(pb.CommitRequest(txn=txn), timeout=DEADLINE_S)
    check(done.outcome == pb.COMMITTED, f"the transfer commits, got {done}")
    status = stub.TxnStatus(
        pb.TxnStatusRequest(txn=txn, home_shard=first.home_shard), timeout=DEADLINE_S
    )
    check(
        status.outcome == pb.COMMITTED and status.commit_ts == done.commit_ts,
        f"TxnStatus answers the same outcome and timestamp, got {status}",
    )
    again = stub.Commit(pb.CommitRequest(txn=txn), timeout=DEADLINE_S)
    check(again.outcome == pb.COMMITTED, "a retried END answers the same outcome")
    print(f"transaction: {pb.Outcome.Name(done.outcome)} at {done.commit_ts}, TxnStatus agrees")


def abort_leaves_nothing(stub):
    txn = stub.Begin(pb.BeginRequest(), timeout=DEADLINE_S).txn
    stub.Write(pb.WriteRequest(txn=txn, key=b"py-carol", value=b"5"), timeout=DEADLINE_S)
    stub.Abort(pb.AbortRequest(txn=txn), timeout=DEADLINE_S)
    got = stub.Read(pb.ReadRequest(key=b"py-carol"), timeout=DEADLINE_S)
    check(not got.found, "an aborted transaction's write is not visible")
    try:
        stub.Read(pb.ReadRequest(txn=txn, key=b"py-carol"), timeout=DEADLINE_S)
        raise Broken("a statement after ABORT succeeded")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.NOT_FOUND, f"then NOT_FOUND, got {error.code()}")
    print("ABORT: nothing written, the handle is gone")


def bad_input(stub):
    try:
        stub.Write(pb.WriteRequest(key=b"", value=b"x"), timeout=DEADLINE_S)
        raise Broken("an empty key was accepted")
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"got {error.code()}")
        print(f"empty key: {error.code().name}: {error.details()}")


def deadlock(stub):
    """Two transactions lock two keys in opposite orders: one is the deadlock's victim."""
    one = stub.Begin(pb.BeginRequest(), timeout=DEADLINE_S).txn
    two = stub.Begin(pb.BeginRequest(), timeout=DEADLINE_S).txn
    lock = lambda txn, key: pb.ReadRequest(txn=txn, key=key, for_update=True)
    stub.Read(lock(one, b"py-x"), timeout=DEADLINE_S)
    stub.Read(lock(two, b"py-y"), timeout=DEADLINE_S)
    # The first waits for the second's lock in the background, the second for the first's.
    results = {}

    def wait(name, request):
        try:
            stub.Read(request, timeout=DEADLINE_S)
            results[name] = "granted"
        except grpc.RpcError as error:
            results[name] = error

    waiter = threading.Thread(target=wait, args=("one", lock(one, b"py-y")))
    waiter.start()
    wait("two", lock(two, b"py-x"))
    if results["two"] == "granted":
        # The second won: the first was the victim; release what the winner holds.
        waiter.join()
        victim, winner = results["one"], two
    else:
        victim, winner = results["two"], one
        waiter.join()
    check(isinstance(victim, grpc.RpcError), f"one of the two was aborted, got {results}")
    check(victim.code() == grpc.StatusCode.ABORTED, f"the victim hears ABORTED, got {victim}")
    reason, retryable = abort_info(victim)
    check(reason == "DEADLOCK" and retryable == "true", f"metadata said {reason}, {retryable}")
    stub.Abort(pb.AbortRequest(txn=winner), timeout=DEADLINE_S)
    stub.Abort(pb.AbortRequest(txn=one if winner == two else two), timeout=DEADLINE_S)
    print(f"deadlock: the victim heard ABORTED, kv-abort-reason {reason}, kv-retryable {retryable}")


def scan(stub):
    rows = stub.Scan(pb.ScanRequest(**{"from": b"py-", "to": b"py."}), timeout=DEADLINE_S).rows
    found = {row.key: row.value for row in rows}
    check(found == {b"py-alice": b"90", b"py-bob": b"10"}, f"the scan found {found}")
    print("SCAN: " + ", ".join(f"{k.decode()}={v.decode()}" for k, v in sorted(found.items())))


def session_stream(stub):
    """The same calls on one long-lived stream (Kv/Session), answered by id."""
    requests = [
        pb.SessionRequest(id=1, write=pb.WriteRequest(key=b"py-dave", value=b"7")),
        pb.SessionRequest(id=2, read=pb.ReadRequest(key=b"", consistency=pb.SEQUENTIAL)),
    ]
    responses = {}
    for response in stub.Session(iter(requests), timeout=DEADLINE_S):
        responses[response.id] = response
        if len(responses) == len(requests):
            break
    check(responses[1].WhichOneof("response") == "write", f"the write answered {responses[1]}")
    error = responses[2].error
    check(
        responses[2].WhichOneof("response") == "error"
        and error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0],
        f"the empty key answered {responses[2]}",
    )
    print("Session stream: a write answered, an empty key answered INVALID_ARGUMENT")


def topology(stub):
    answer = stub.Topology(pb.TopologyRequest(), timeout=DEADLINE_S)
    check(answer.shards and answer.nodes, f"the topology names shards and nodes: {answer}")
    print(f"topology: {len(answer.nodes)} nodes, {len(answer.shards)} shards")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", required=True, help="HOST:PORT of any node")
    args = parser.parse_args()
    with grpc.insecure_channel(args.connect) as channel:
        stub = pb_grpc.KvStub(channel)
        try:
            for step in (topology, one_statement, transfer, abort_leaves_nothing, bad_input,
                         deadlock, scan, session_stream):
                step(stub)
        except Broken as broken:
            print(f"BROKEN: {broken}")
            return 1
    print("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
