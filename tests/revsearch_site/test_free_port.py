"""Ports for the servers tests and benchmarks start: free, and out of the way of outgoing connections."""

import socket

from revsearch_site import processes


def test_ports_are_chosen_below_those_the_kernel_gives_outgoing_connections(tmp_path, monkeypatch) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(processes, "EPHEMERAL_PORTS", ranges)
    for _ in range(20):
        port = processes.free_port(3)
        assert port >= processes.LOWEST_FREE_PORT and port + 2 < 32768
        assert all(processes.bindable(port + i) for i in range(3))
    ranges.write_text("20001 60999\n")  # no room below: any free run will do
    port = processes.free_port(3)
    assert all(processes.bindable(port + i) for i in range(3))


def test_a_port_someone_listens_on_is_never_chosen(tmp_path, monkeypatch) -> None:
    # Nine ports free now, all but one then listened on: free_port may only choose that one.
    base = next(port for port in range(21000, 32000, 10) if all(processes.bindable(port + i) for i in range(9)))
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text(f"{base + 10} 60999\n")
    monkeypatch.setattr(processes, "EPHEMERAL_PORTS", ranges)
    monkeypatch.setattr(processes, "LOWEST_FREE_PORT", base)
    listeners = []
    try:
        for port in range(base, base + 9):
            if port != base + 4:
                listener = socket.socket()
                listener.bind(("127.0.0.1", port))
                listener.listen()
                listeners.append(listener)
        assert {processes.free_port() for _ in range(10)} == {base + 4}
    finally:
        for listener in listeners:
            listener.close()
