"""Free ports on 127.0.0.1 for the processes and servers the harness starts.

A port the kernel picks for bind(("127.0.0.1", 0)) is free when asked, not reserved: the
kernel may hand the same port to the next bind(0) in this process or in the other pytest
worker, or use it as the local end of an outgoing connection, before the process it was
chosen for binds it. One CI run lost that race: Prometheus could not bind its port, the
workload's fake exporter held it and answered the test's /api/v1/rules with metrics text.

So ports come from a pool the kernel never picks by itself: the range just below
net.ipv4.ip_local_port_range (or above it, where below is too small). Each pytest-xdist
worker owns its own slice of the pool and walks it in order, so no port is handed out twice
by one run until a worker has walked its whole slice, and a port still held (a process not
yet stopped, a connection in TIME_WAIT) is passed over because binding it fails.
"""
import itertools
import os
import socket
import threading

POOL_SIZE = 16000   # ports in the pool, split between the workers


def _ephemeral_range():
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999   # Linux's default


def pool(ephemeral=None, size=POOL_SIZE):
    """(first, end) of the ports outside the kernel's ephemeral range that the harness uses:
    below the range where at least `size` non-privileged ports fit, else above it."""
    lo, hi = ephemeral or _ephemeral_range()
    if lo - 1024 >= size:
        return lo - size, lo
    if 65536 - (hi + 1) >= size // 4:
        return hi + 1, min(65536, hi + 1 + size)
    raise RuntimeError(f"net.ipv4.ip_local_port_range is {lo}-{hi}: no room outside it for "
                       f"the test harness' ports; leave at least {size // 4} ports free of it")


def worker_slice(first, end, worker=None, workers=None):
    """This pytest worker's (first, end) within the pool: gwN of M gets the N-th of M slices."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0") if worker is None else worker
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) if workers is None else workers
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    width = (end - first) // max(workers, 1)
    return first + index * width, first + (index + 1) * width


_lock = threading.Lock()
_cursor = None


def _bindable(port, kind):
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that is free now (TCP, or UDP with socket.SOCK_DGRAM), from this
    worker's slice of the harness' pool: never one the kernel would pick for a bind(0) or an
    outgoing connection, never one this process handed out before (until the slice wraps)."""
    global _cursor
    with _lock:
        if _cursor is None:
            first, end = worker_slice(*pool())
            _cursor = itertools.cycle(range(first, end))
        for _ in range(POOL_SIZE):
            port = next(_cursor)
            if _bindable(port, kind):
                return port
    raise RuntimeError("no free port left in the test harness' port pool")


def free_port_tcp_udp():
    """A port of this worker's slice free on 127.0.0.1 for TCP and UDP at once (an Alertmanager's
    gossip listens on both)."""
    for _ in range(1000):
        port = free_port()
        if _bindable(port, socket.SOCK_DGRAM):
            return port
    raise RuntimeError("no port free for both TCP and UDP in the test harness' port pool")
