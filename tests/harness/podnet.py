"""The pod network of the e2e stack: an HTTP forward proxy on 127.0.0.1 that plays the cluster
network between Prometheus and the simulated pods and nodes.

Prometheus discovers targets through the API server and relabels them as the chart says, so a
target's address is a pod IP (10.244.x.y:port, from kwok) or a node IP (10.0.0.n:10250). Those
addresses exist nowhere on this machine. Each scrape job and the Alertmanager discovery get
`proxy_url` pointing here (the one swap of the network); the proxy looks the address up in
`routes` - (ip, port) -> the local 127.0.0.1 port of the process that plays that pod's
container port or that node's kubelet - and forwards the request (an http:// target), or
tunnels the connection (CONNECT, which an HTTP client sends its proxy for an https:// target:
the kubelet and cAdvisor jobs; the TLS inside is end to end, client to stand-in kubelet). An
address no pod or node declares, or a port the pod does not declare, is answered 502 and
recorded in `misses`: a relabelling that builds a wrong address fails its target, as in a
cluster.
"""
import asyncio
import threading
import time
import urllib.parse

from .aioloop import LoopThread


class PodNetwork:
    def __init__(self):
        self.routes = {}          # (ip, port) -> local port
        self.misses = []          # (time, "ip:port", reason)
        self._lock = threading.Lock()
        self._loop = self._server = None
        self.port = None

    def set_routes(self, routes):
        with self._lock:
            self.routes = dict(routes)

    def resolve(self, host, port):
        with self._lock:
            return self.routes.get((host, int(port)))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Serve on 127.0.0.1:<free port> from an event loop of its own."""
        self._loop = LoopThread("podnet").start()
        self._server = self._loop.call(asyncio.start_server(self._handle, "127.0.0.1", 0, reuse_address=True))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self):
        if self._loop:
            self._loop.stop([self._server])
            self._loop = None

    def _refuse(self, writer, target, reason):
        self.misses.append((time.time(), target, reason))
        del self.misses[:-200]
        body = f"podnet: {target}: {reason}\n".encode()
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _handle(self, reader, writer):
        """One request (absolute-form, as a client sends to a proxy), one response, close."""
        try:
            await self._relay(reader, writer)
            await writer.drain()
        except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _relay(self, reader, writer):
        line = (await reader.readline()).decode("latin-1")
        if not line:
            return
        method, url, version = line.rstrip("\r\n").split(" ", 2)
        headers, length = [], 0
        while True:
            h = (await reader.readline()).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            name = h.split(":", 1)[0].strip().lower()
            if name == "content-length":
                length = int(h.split(":", 1)[1])
            if name in ("proxy-connection", "connection", "keep-alive", "proxy-authorization"):
                continue
            headers.append(h)
        if method == "CONNECT":
            await self._tunnel(reader, writer, url)
            return
        body = await reader.readexactly(length) if length else b""
        u = urllib.parse.urlsplit(url)
        if not u.hostname:
            self._refuse(writer, url, f"only absolute-form requests and CONNECT are routed (got {method} {url})")
            return
        port = u.port or (443 if u.scheme == "https" else 80)
        target = f"{u.hostname}:{port}"
        local = self.resolve(u.hostname, port)
        if local is None:
            self._refuse(writer, target, "no pod or node declares this address and port")
            return
        path = urllib.parse.urlunsplit(("", "", u.path or "/", u.query, ""))
        up_r, up_w = await asyncio.open_connection("127.0.0.1", local)
        try:
            up_w.write(f"{method} {path} {version}\r\n".encode("latin-1") + "".join(headers).encode("latin-1")
                       + b"Connection: close\r\n\r\n" + body)
            await up_w.drain()
            # This proxy serves one request per connection and says so to the client.
            while (h := await up_r.readline()) not in (b"\r\n", b"\n", b""):
                if not h.lower().startswith(b"connection:"):
                    writer.write(h)
            writer.write(b"Connection: close\r\n\r\n")
            while chunk := await up_r.read(65536):
                writer.write(chunk)
        finally:
            up_w.close()

    async def _tunnel(self, reader, writer, authority):
        """CONNECT host:port (how an HTTP client reaches an https:// target through a proxy):
        the routed local port is connected and bytes are relayed both ways until either side
        closes; the TLS inside is the client's and the target's business."""
        host, _, port = authority.rpartition(":")
        local = self.resolve(host.strip("[]"), port) if port.isdigit() else None
        if local is None:
            self._refuse(writer, authority, "no pod or node declares this address and port")
            return
        up_r, up_w = await asyncio.open_connection("127.0.0.1", local)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pump(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()
        try:
            await asyncio.gather(pump(reader, up_w), pump(up_r, writer))
        finally:
            up_w.close()
