"""The servers the tests and benchmarks start for themselves: two Milvus standalone servers run side by side."""

import shutil

import pytest
from pymilvus import MilvusClient

from benchmarks import servers
from revsearch_site import processes


@pytest.mark.processes
def test_two_milvus_standalone_servers_run_side_by_side_each_with_its_own_collections(tmp_path) -> None:
    first = processes.free_port(2)
    started: list[processes.Process] = []
    try:
        for port in (first, first + 1):
            server = servers.milvus_standalone(port, tmp_path / str(port)).start(tmp_path / f"{port}.log")
            started.append(server)
            # Before: the second one's embedded etcd found its peer port, 2380, taken and the server never came up.
            server.wait_ready(timeout=120)
        for port in (first, first + 1):
            MilvusClient(uri=f"http://127.0.0.1:{port}").create_collection(f"faces_{port}", dimension=4)
        for port in (first, first + 1):
            assert MilvusClient(uri=f"http://127.0.0.1:{port}").list_collections() == [f"faces_{port}"]
    finally:
        for server in started:
            server.stop()
        for port in (first, first + 1):
            shutil.rmtree(tmp_path / str(port), ignore_errors=True)  # each unpacks Milvus's 246 MB
