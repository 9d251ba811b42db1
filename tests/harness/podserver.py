"""The synthetic pods' HTTP servers (harness.workload): one 127.0.0.1 port per pod or node,
served from one event loop, answering /metrics from a collect(path) function, and a status
instead when a gate says the pod would not answer."""
import asyncio
import threading

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from .aioloop import LoopThread
from .ports import free_port


class _Collector:
    def __init__(self, fn):
        self._fn = fn

    def collect(self):
        return self._fn()


def expose(fn):
    """A collect(path) -> bytes serving fn()'s families whatever the path."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(fn))
    return lambda path="/metrics": generate_latest(reg)


class PodServers:
    """key -> a server on its own 127.0.0.1 port. start() first, stop() at the end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None         # harness.aioloop.LoopThread serving the pods
        self._servers = {}        # key -> (local port, asyncio server)

    def __contains__(self, key):
        return key in self._servers

    def keys(self):
        with self._lock:
            return list(self._servers)

    def start(self):
        """Start the event loop; returns self."""
        self._loop = LoopThread("workload").start()
        return self

    def ensure(self, key, collect, gate=None):
        """The local port serving `key`, started on first call: GET / (and the health paths)
        answers ok, any other path collect(path); gate() returning a status refuses with it."""
        with self._lock:
            if key in self._servers:
                return self._servers[key][0]
            port = free_port()

            async def handle(reader, writer):
                try:
                    while True:
                        line = await reader.readline()
                        if not line:
                            break
                        path = line.split(b" ")[1].decode() if b" " in line else "/"
                        close = False
                        while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                            close = close or h.lower().startswith(b"connection:") and b"close" in h.lower()
                        refused = gate() if gate else None
                        if refused:
                            body, status = b"pod not ready\n", refused
                        elif path.split("?")[0] in ("/", "/-/healthy", "/healthz"):
                            body, status = b"ok\n", "200 OK"
                        else:
                            body = await asyncio.get_running_loop().run_in_executor(None, collect, path)
                            status = "200 OK"
                        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                        await writer.drain()
                        if close:       # the pod network asks for one request per connection
                            break
                except (ConnectionError, asyncio.IncompleteReadError):
                    pass
                finally:
                    writer.close()

            self._servers[key] = (port, self._loop.call(asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)))
            return port

    def close(self, key):
        with self._lock:
            _, server = self._servers.pop(key)
        self._loop.loop.call_soon_threadsafe(server.close)

    def stop(self):
        if self._loop:
            self._loop.stop([srv for _, srv in self._servers.values()])
            self._loop = None
            self._servers = {}
