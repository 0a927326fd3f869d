"""The servers the tests and benchmarks start for themselves: two Milvus standalone servers run side by side, and
the test modules that start them run in one test process."""

import shutil

import pytest
from pymilvus import MilvusClient

from benchmarks import servers
from revsearch_site import processes
from tests.conftest import BASE_DIR, MILVUS_STANDALONE_MODULES, process_group


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


def test_every_test_module_that_starts_milvus_standalone_shares_one_test_process() -> None:
    starting = {
        path.relative_to(BASE_DIR).as_posix()
        for path in (BASE_DIR / "tests").rglob("test_*.py")
        if "milvus_standalone(" in path.read_text()
    }
    assert "tests/benchmarks/test_servers.py" in starting and "tests/flow/test_photos.py" in starting
    assert starting <= MILVUS_STANDALONE_MODULES
    assert {process_group(f"{module}::test_x") for module in starting} == {"milvus-standalone"}
    assert process_group("tests/flow/test_faults.py::test_x") == "tests/flow/test_faults.py"
