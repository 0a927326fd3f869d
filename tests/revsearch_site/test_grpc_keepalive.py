"""Quiet logs: the Milvus client pings the server no more often than the server allows, so it never answers GOAWAY
"too_many_pings" (which every web, worker and watcher process logged at ERROR, about 80 s into each idle spell)."""

import subprocess
import sys

import grpc
import pytest
from milvus_lite.adapter.grpc import server as milvus_lite_server

from media_index import vector_store
from tests.conftest import BASE_DIR

pytestmark = pytest.mark.processes

# gRPC core's server defaults (doc/keepalive.md), in force unless the server sets them.
SERVER_DEFAULTS = {
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.http2.min_recv_ping_interval_without_data_ms": 300_000,
    "grpc.http2.max_ping_strikes": 2,
}
GOAWAY = "too_many_pings"

# A client that idles between two calls; its keepalive options are pymilvus's, made aggressive (a ping every 200 ms,
# with no limit on pings between data), and in the second run overridden by the vector store's.
IDLE_CLIENT = """
import sys, time
from pymilvus import MilvusClient
from media_index.vector_store import GRPC_OPTIONS

options = {"grpc.keepalive_time_ms": 200, "grpc.http2.max_pings_without_data": 0}
if sys.argv[2] == "ours":
    options |= GRPC_OPTIONS
client = MilvusClient(uri=sys.argv[1], timeout=10, grpc_options=options)
client.list_collections()
time.sleep(4)
client.list_collections()
print("both calls answered")
"""


class Stop(Exception):
    pass


def milvus_lite_server_options(monkeypatch) -> dict:
    """The options Milvus Lite's own server is built with, over gRPC's defaults."""
    seen = {}

    def record(*args, options=(), **kwargs):
        seen.update(dict(options))
        raise Stop

    monkeypatch.setattr(milvus_lite_server.grpc, "server", record)
    with pytest.raises(Stop):
        milvus_lite_server._build_server(db=None, max_workers=1)
    return SERVER_DEFAULTS | seen


def test_the_clients_pings_fit_the_milvus_lite_servers_policy(monkeypatch):
    server = milvus_lite_server_options(monkeypatch)
    client = vector_store.GRPC_OPTIONS
    if not server["grpc.keepalive_permit_without_calls"]:
        assert client["grpc.keepalive_permit_without_calls"] is False, "the server takes no ping while no call runs"
    assert client["grpc.keepalive_time_ms"] >= server["grpc.http2.min_recv_ping_interval_without_data_ms"]


@pytest.mark.django_db
def test_the_vector_stores_channel_is_built_with_those_options(vector_store_on, monkeypatch, settings):
    # pymilvus shares one channel among the clients of a process with the same address and token, built with the
    # first one's options: another test's client may have made it. A token of its own gets this test a new one.
    settings.MILVUS_TOKEN = "keepalive-test"
    built = []
    real = grpc.insecure_channel

    def record(target, options=None, **kwargs):
        built.append(dict(options))
        return real(target, options=options, **kwargs)

    monkeypatch.setattr(grpc, "insecure_channel", record)
    vector_store_on.reset_client()
    vector_store_on.count()
    assert built, "no new channel: the client was shared with one made before"
    assert built[-1].items() >= vector_store.GRPC_OPTIONS.items(), "pymilvus put its own keepalive over ours"


def idle_client(milvus_uri: str, options: str) -> subprocess.Popen:
    environment = {"PATH": "/usr/bin:/bin", "GRPC_VERBOSITY": "ERROR"}  # gRPC's default: GOAWAYs are logged
    return subprocess.Popen(
        [sys.executable, "-c", IDLE_CLIENT, milvus_uri, options], env=environment, cwd=BASE_DIR, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_an_idle_client_is_sent_away_for_too_many_pings_unless_it_uses_our_options(milvus_uri):
    aggressive, ours = idle_client(milvus_uri, "aggressive"), idle_client(milvus_uri, "ours")
    (aggressive_out, aggressive_err), (ours_out, ours_err) = aggressive.communicate(60), ours.communicate(60)
    # The server does enforce its policy, and this is how it shows...
    assert "both calls answered" in aggressive_out, aggressive_err
    assert GOAWAY in aggressive_err
    # ...and with the vector store's options over the same aggressive ones, it does not.
    assert "both calls answered" in ours_out, ours_err
    assert GOAWAY not in ours_err and "GOAWAY" not in ours_err, ours_err
