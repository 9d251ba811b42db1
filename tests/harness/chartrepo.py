"""Where a chart repository consumer gets the chart from, on 127.0.0.1.

    with Registry(workdir) as reg:            # distribution v3 (bin/registry), plain HTTP
        reg.oci                               # oci://127.0.0.1:PORT/charts
    with RepoServer(directory) as repo:       # a static HTTP server for index.yaml and packages
        repo.url                              # http://127.0.0.1:PORT

Both are harness Processes: own process group, log file, stopped by stop() (the context
manager, the fixtures' finalizers, and an atexit hook as the last resort).
"""
import json
import os
import sys
import urllib.request
from pathlib import Path

from . import tools
from .ports import free_port
from .process import Process

# Any attempt to leave the machine fails at once: the proxies point at a closed local port
# and only 127.0.0.1/localhost bypass them. Used for helm and cosign in the release tests.
OFFLINE_ENV = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
               "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class Registry:
    """An OCI registry (github.com/distribution/distribution/v3) on 127.0.0.1, storage in workdir."""

    def __init__(self, workdir, port=None, binary=None, namespace="charts"):
        self.dir = Path(workdir)
        self.port = port or free_port()
        self.binary = binary or tools.require("registry")
        self.namespace = namespace
        self.process = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def oci(self):
        return f"oci://{self.host}/{self.namespace}"

    def start(self, timeout=60):
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "config.yml"
        config.write_text(REGISTRY_CONFIG.format(root=self.dir / "storage", port=self.port))
        # OpenTelemetry tracing is on by default in distribution v3: nothing to export to here.
        env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true", **OFFLINE_ENV}
        self.process = Process("registry", [self.binary, "serve", str(config)], self.dir / "registry.log",
                               f"http://{self.host}/v2/", env=env).start(timeout)
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop()
            self.process = None

    def tags(self, repository):
        with urllib.request.urlopen(f"http://{self.host}/v2/{self.namespace}/{repository}/tags/list",
                                    timeout=10) as r:
            return json.load(r).get("tags") or []

    def manifest(self, repository, reference):
        req = urllib.request.Request(f"http://{self.host}/v2/{self.namespace}/{repository}/manifests/{reference}",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RepoServer:
    """A classic chart repository: `python -m http.server` on 127.0.0.1 serving a directory."""

    def __init__(self, directory, port=None, log_dir=None):
        self.dir = Path(directory)
        self.port = port or free_port()
        self.log_dir = Path(log_dir) if log_dir else self.dir.parent
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                "--directory", str(self.dir)]
        self.process = Process("chart-repo", argv, self.log_dir / f"repo-{self.port}.log",
                               self._ready, env={"PYTHONUNBUFFERED": "1"}).start(timeout)
        return self

    def _ready(self):
        with urllib.request.urlopen(f"{self.url}/", timeout=2) as r:
            return r.status == 200

    def stop(self):
        if self.process is not None:
            self.process.stop()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def offline_env(base=None, **extra):
    """`base` (default os.environ) with the OFFLINE_ENV proxies and `extra` set."""
    return {**(base if base is not None else os.environ), **OFFLINE_ENV, **extra}
