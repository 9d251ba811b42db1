"""The synthetic pods' HTTP servers (harness.workload): one 127.0.0.1 port per pod or node,
served from one event loop, answering /metrics from a collect(path) function, and a status
instead when a gate says the pod would not answer. A collect made by expose(fn, openmetrics=True)
negotiates the format as prometheus_client does in a real Python service: OpenMetrics text (the
only text format that carries exemplars) when the scraper's Accept header asks for it, else the
Prometheus text format. A server may speak TLS and ask an auth hook first (the stand-in kubelets:
harness.kubelet)."""
import asyncio
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import CollectorRegistry

from .aioloop import LoopThread
from .ports import free_port


class _Collector:
    def __init__(self, fn):
        self._fn = fn

    def collect(self):
        return self._fn()


TEXT_FORMAT = "text/plain; version=0.0.4"


def expose(fn, openmetrics=False):
    """A collect(path) -> bytes serving fn()'s families whatever the path, in the Prometheus text
    format. openmetrics=True: the collect also has .negotiate(path, accept) -> (bytes, content
    type), prometheus_client's own choice of format for that Accept header (choose_encoder)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(fn))

    def collect(path="/metrics"):
        return generate_latest(reg)
    if openmetrics:
        def negotiate(path, accept):
            encoder, content_type = choose_encoder(accept or "")
            return encoder(reg), content_type
        collect.negotiate = negotiate
    return collect


class PodServers:
    """key -> a server on its own 127.0.0.1 port. start() first, stop() at the end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None         # harness.aioloop.LoopThread serving the pods
        self._servers = {}        # key -> (local port, asyncio server)
        self._conns = {}          # key -> the open connections' writers
        self._auth_pool = None    # the auth hooks' threads (they wait on the API server), apart
                                  # from the collects' so a slow API server starves no pod

    def __contains__(self, key):
        return key in self._servers

    def keys(self):
        with self._lock:
            return list(self._servers)

    def start(self):
        """Start the event loop; returns self."""
        self._loop = LoopThread("workload").start()
        self._auth_pool = ThreadPoolExecutor(4, thread_name_prefix="podserver-auth")
        return self

    def ensure(self, key, collect, gate=None, tls=None, auth=None):
        """The local port serving `key`, started on first call: GET / (and the health paths)
        answers ok, any other path collect(path); gate() returning a status refuses with it.
        tls: an ssl.SSLContext to serve HTTPS with. auth: auth(method, path, headers) -> None
        to go on, or (status line, body) to answer instead, asked before anything else for every
        request (headers: lower-cased names); it may block (it runs off the event loop)."""
        with self._lock:
            if key in self._servers:
                return self._servers[key][0]
            port = free_port()

            async def handle(reader, writer):
                self._conns.setdefault(key, set()).add(writer)
                try:
                    while True:
                        line = await reader.readline()
                        if not line:
                            break
                        method = line.split(b" ")[0].decode(errors="replace")
                        path = line.split(b" ")[1].decode() if b" " in line else "/"
                        close, headers = False, {}
                        while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                            close = close or h.lower().startswith(b"connection:") and b"close" in h.lower()
                            name, _, value = h.decode(errors="replace").partition(":")
                            headers[name.strip().lower()] = value.strip()
                        accept = headers.get("accept", "")
                        run = asyncio.get_running_loop().run_in_executor
                        denied = await run(self._auth_pool, auth, method, path, headers) if auth else None
                        refused = gate() if gate and not denied else None
                        ctype = TEXT_FORMAT
                        if denied:
                            (status, body), ctype = denied, "text/plain; charset=utf-8"
                        elif refused:
                            body, status = b"pod not ready\n", refused
                        elif path.split("?")[0] in ("/", "/-/healthy", "/healthz"):
                            body, status = b"ok\n", "200 OK"
                        else:
                            negotiate = getattr(collect, "negotiate", None)
                            if negotiate:
                                body, ctype = await run(None, negotiate, path, accept)
                            else:
                                body = await run(None, collect, path)
                            status = "200 OK"
                        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                        await writer.drain()
                        if close:       # the pod network asks for one request per connection
                            break
                except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                    pass
                finally:
                    self._conns.get(key, set()).discard(writer)
                    writer.close()

            self._servers[key] = (port, self._loop.call(asyncio.start_server(
                handle, "127.0.0.1", port, reuse_address=True, ssl=tls)))
            return port

    def drop_connections(self, key):
        """Close the open connections of `key`'s server (as a restarted process would): clients
        connect again, and a TLS server's new certificate is what they meet."""
        def drop():
            for w in list(self._conns.get(key, ())):
                w.close()
        self._loop.loop.call_soon_threadsafe(drop)

    def close(self, key):
        with self._lock:
            _, server = self._servers.pop(key)
        self._loop.loop.call_soon_threadsafe(server.close)

    def stop(self):
        if self._loop:
            self._loop.stop([srv for _, srv in self._servers.values()])
            self._loop = None
            self._servers = {}
        if self._auth_pool:
            self._auth_pool.shutdown(wait=False, cancel_futures=True)
            self._auth_pool = None
