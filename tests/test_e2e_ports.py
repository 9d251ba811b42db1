"""The harness' ports: every process and server an e2e or cluster test starts on 127.0.0.1
gets its port from harness.ports, so two of them (in one worker or in two) never race for
one port, and none races the kernel's own picks (bind to port 0, outgoing connections)."""
import itertools
import socket

import pytest

from harness import ports

pytestmark = pytest.mark.e2e


def test_the_pool_lies_outside_the_kernels_ephemeral_range():
    assert ports.pool((32768, 60999), size=16000) == (16768, 32768)
    # too little room below: above the range
    assert ports.pool((10000, 40000), size=16000) == (40001, 56001)
    with pytest.raises(RuntimeError, match="1024-65000"):
        ports.pool((1024, 65000), size=16000)


def test_each_worker_owns_its_own_slice_of_the_pool():
    slices = [ports.worker_slice(16768, 32768, f"gw{i}", 3) for i in range(3)]
    assert slices[0][0] == 16768 and slices[-1][1] <= 32768
    for (a_first, a_end), (b_first, _) in zip(slices, slices[1:]):
        assert a_first < a_end <= b_first
    assert ports.worker_slice(16768, 32768, "master", 1) == (16768, 32768)


def test_ports_handed_out_are_distinct_and_never_the_kernels_own():
    lo, hi = ports._ephemeral_range()
    got = [ports.free_port() for _ in range(300)] + [ports.free_port(socket.SOCK_DGRAM) for _ in range(50)]
    assert len(set(got)) == len(got)
    assert not [p for p in got if lo <= p <= hi]
    first, end = ports.worker_slice(*ports.pool())
    assert all(first <= p < end for p in got)


def test_a_port_something_listens_on_is_passed_over(monkeypatch):
    held, spare = ports.free_port(), ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", held))
        s.listen()
        monkeypatch.setattr(ports, "_cursor", itertools.cycle([held, spare]))
        assert ports.free_port() == spare
