"""The chart's RENDERED Prometheus and Alertmanager behind their web config (global.web: TLS and
basic auth, exporter-toolkit's `--web.config.file`), run for real on 127.0.0.1 with the client
settings the chart renders for them: Prometheus' alerting block and its monitoring-stack jobs
for itself and Alertmanager, the client config (client.yml) that the probes and the `helm test`
pods hand to promtool and amtool.

What a user creates before installing is made here, as the README's worked example says: a
throwaway CA and one server certificate (python `cryptography`), each component's
kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) and client Secret (username, password), and
the bcrypt hash of the password (python `bcrypt`) in global.web.<component>.basicAuth.users.
These Secrets join the rendered objects, so every volume (the web config Secret, the TLS
Secret, the projected client volumes) is laid out by harness.podfiles exactly as mounted.

What is swapped, and nothing else (WebStack.swaps):
  1. Every absolute path into a mount, in the arguments, prometheus.yml, alertmanager.yml, the
     web config and the client config, is re-rooted under the pod's local tree (harness.podfiles).
  2. Listen addresses -> 127.0.0.1:<free port> (the web config applies to them unchanged),
     storage paths -> <workdir>, Alertmanager single instance (--cluster.listen-address=).
  3. No API server here: prometheus.yml keeps only the two monitoring-stack jobs of the web
     config (monitoring-stack-prometheus, -alertmanager); their endpointslice discovery becomes a
     static target carrying the labels that role gives the rendered Service's pod (service name,
     namespace, pod name, port name, the Service's prometheus.io annotations), with the
     prometheus.io/port label = the local port; relabelling, scheme, basic_auth and tls_config
     are the rendered ones. The in-cluster Alertmanager target (rendered with
     alerting.inCluster.discovery=static) -> 127.0.0.1:<its port>. Intervals shortened.
  4. Alertmanager's receivers -> the local sinks (harness.swaps.alertmanager_config).
  5. The certificate also names 127.0.0.1 (an IP SAN), so this module's own requests verify it;
     the chart's clients verify the Service name (tls_config.server_name), which it also names.
Everything started is stopped by WebStack.stop(), also when start() fails.
"""
import base64
import copy
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from . import swaps, tools
from .manifests import Manifests
from .podfiles import PodFiles, flag
from .polling import wait_until
from .ports import free_port
from .process import Process
from .render import render_raw
from .sinks import Sinks
from .swaps import Swaps

USER, PASSWORD = "p5-web", "s3cret-Web-pass"
COMPONENTS = ("prometheus", "alertmanager")


# ---------------------------------------------------------------------------- what the user makes
def make_ca(common_name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca, dns_names):
    """A server certificate signed by `ca` for dns_names and 127.0.0.1: (cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def pem(cert):
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def bcrypt_hash(password):
    import bcrypt
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def _secret(name, namespace, data, type_="Opaque"):
    return {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()}}


def web_user_objects(workdir, values, components, release, namespace):
    """What a user brings for the web config of `components` (global.web.<component> in
    `values`): a test CA (returned with its file and a file of another CA), per component a
    kubernetes.io/tls Secret `<release>-<component>-tls` whose certificate holds the Service's
    names and a client Secret `<release>-<component>-client`; and the chart rendered with
    `values` beside them, as Manifests. (ca, ca_file, wrong_ca_file, manifests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = make_ca("phase5 test CA")
    ca_file, wrong_ca_file = workdir / "ca.crt", workdir / "wrong-ca.crt"
    ca_file.write_bytes(pem(ca[1]))
    wrong_ca_file.write_bytes(pem(make_ca("another CA")[1]))
    docs, _ = render_raw((), values, release=release, namespace=namespace)
    user = []
    for c in components:
        svc = f"{release}-{c}"
        crt, key = issue(ca, [f"{svc}.{namespace}.svc", svc, f"{svc}.{namespace}"])
        user.append(_secret(f"{svc}-tls", namespace, {"tls.crt": crt, "tls.key": key, "ca.crt": pem(ca[1])},
                            "kubernetes.io/tls"))
        user.append(_secret(f"{svc}-client", namespace, {"username": USER, "password": PASSWORD}))
    return ca, ca_file, wrong_ca_file, Manifests(docs + user)


def web_values(release, namespace, password_hash):
    """global.web for both components as the README's example sets it, and the names of the
    Secrets it refers to."""
    return {c: {"tls": {"enabled": True, "secretName": f"{release}-{c}-tls"},
                "basicAuth": {"enabled": True, "users": {USER: password_hash},
                              "clientSecret": f"{release}-{c}-client"}} for c in COMPONENTS}


# ---------------------------------------------------------------------------- clients of this module
def prometheus_pod(manifests, root):
    """The rendered Prometheus pod laid out under `root` (harness.podfiles) and its configuration:
    (pod, path of its prometheus.yml under root, the parsed configuration)."""
    pod = PodFiles(manifests, "prometheus", "prometheus", root)
    path = pod.local(flag(pod.args, "config.file"))
    return pod, path, yaml.safe_load(path.read_text())


class LocalServers:
    """What the local TLS stacks (harness.exporter_tls, harness.web_tls_logs, harness.thanos_tls)
    share: self.ports (name -> 127.0.0.1 port, "prometheus" among them) and self.ca_file give a
    verifying client of each server, a plain one of their Prometheus, and polling that retries
    while a server is not up yet; self.procs (name -> Process, in the order started) are stopped
    by stop(), the last started first (AllOrNothing calls it after a failed start too)."""

    def stop(self):
        for p in reversed(list(self.procs.values())):
            p.stop()

    def client(self, name, cafile=None):
        return Client(f"https://127.0.0.1:{self.ports[name]}", cafile or self.ca_file)

    def prom(self):
        return Client(f"http://127.0.0.1:{self.ports['prometheus']}", None)

    def wait(self, predicate, timeout, what):
        return wait_until(predicate, timeout, what, every=0.5, retry=(ConnectionError, OSError, RuntimeError))

    def targets(self):
        """{job name: (health, lastError)} of Prometheus' active targets."""
        got = self.prom().json("/api/v1/targets?state=active")["data"]["activeTargets"]
        return {t["scrapePool"]: (t["health"], t["lastError"]) for t in got}


def reroot_args(pod, args, drop, config_flags=("--web.config.file",)):
    """A rendered container's args for a local run: the flags named in `drop` left out, every
    path into a mount re-rooted under the pod's local tree (harness.podfiles), and the YAML files
    the `config_flags` name (web configs) re-rooted in place too."""
    out = []
    for a in args:
        name, _, value = a.partition("=")
        if name.lstrip("-") in drop:
            continue
        if name in config_flags and value:
            path = pod.local(value)
            path.write_text(yaml.safe_dump(pod.reroot_tree(yaml.safe_load(path.read_text())), sort_keys=False))
        out.append(f"{name}={pod.reroot(value)}" if value else a)
    return out


def scrape_only(cfg):
    """A rendered prometheus.yml cut down, in place, for a local stack that only scrapes: 1s
    intervals, no rules, no alerting. Returns {job name: a copy of the rendered job}."""
    rendered_jobs = {j["job_name"]: copy.deepcopy(j) for j in cfg["scrape_configs"]}
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg.pop("rule_files", None)
    cfg.pop("alerting", None)
    return rendered_jobs


def start_prometheus(pod, pdir, port, env=None):
    """The real Prometheus with the rendered pod's arguments (reroot_args), listening on
    127.0.0.1:port with its TSDB under pdir/data: the started Process."""
    data = pdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    args = reroot_args(pod, pod.args, ("web.listen-address", "storage.tsdb.path", "web.external-url"))
    args += [f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={data}"]
    return Process("prometheus", [tools.require("prometheus")] + args, pdir / "prometheus.log",
                   f"http://127.0.0.1:{port}/-/ready", env=env).start()


def local_command(command, service, port, pod=None):
    """A rendered `helm test` pod's command with the Service's address (on any of its ports)
    pointed at 127.0.0.1:port and, given its harness.podfiles pod, its mount paths laid out there."""
    out = []
    for a in command:
        for p in service["spec"]["ports"]:
            a = a.replace(f"://{service['metadata']['name']}:{p['port']}/", f"://127.0.0.1:{port}/")
        for mp in (pod.mounts if pod else ()):
            a = a.replace(f"{mp}/", f"{pod.reroot(mp)}/")
        out.append(a)
    return out


def wget_env(ca_file, workdir):
    """The environment a rendered `helm test` pod's `sh -c 'wget ...'` runs in here: GNU wget
    (tools.require) first on PATH, given the CA through a wgetrc in `workdir` (WGETRC
    ca_certificate). The pod's busybox wget does not verify certificates; GNU wget does: stricter
    than the pod, same command line."""
    wget = tools.require("wget")
    rc = Path(workdir) / "wgetrc"
    rc.write_text(f"ca_certificate = {ca_file}\n")
    return {**os.environ, "WGETRC": str(rc), "PATH": f"{os.path.dirname(wget)}:{os.environ.get('PATH', '')}"}


def assert_wrong_password_refused(argv, pod, env):
    """The rendered `sh -c 'wget -q ...'` (run with -S to see the answer) fails with a 401 while
    the password file its pod mounts says something else: the credentials come from the files.
    The file is restored after."""
    pw = next(pod.root.rglob("password"))
    pw.write_text("wrong")
    try:
        bad = subprocess.run(argv[:2] + [argv[2].replace("wget -q ", "wget -S ")], capture_output=True, text=True,
                             timeout=30, env=env)
        assert bad.returncode != 0 and "401" in bad.stderr, bad.stderr
    finally:
        pw.write_text(PASSWORD)


class Client:
    """HTTP(S) requests to one of the running servers, trusting `cafile`."""

    def __init__(self, base_url, cafile):
        self.base_url = base_url
        self.ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    def request(self, path, auth=(USER, PASSWORD), method="GET", body=None, ctx=None):
        """(status, body bytes). auth None: no Authorization header."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx or self.ctx) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path, **kw):
        status, body = self.request(path, **kw)
        if status != 200:
            raise RuntimeError(f"{self.base_url}{path}: HTTP {status}: {body[:200]!r}")
        return json.loads(body)


# ---------------------------------------------------------------------------- the stack
class WebStack:
    def __init__(self, workdir, set_values=None, *, release="p5", namespace="monitoring",
                 interval="1s", prometheus_config=None):
        """prometheus_config: optional callable(cfg) -> cfg applied after the swaps (a test's
        deliberate break)."""
        self.workdir = Path(workdir)
        self.release, self.namespace = release, namespace
        self.extra_values = dict(set_values or {})
        self.interval = interval
        self.prometheus_config_hook = prometheus_config
        self.swaps = Swaps()
        self.sinks = Sinks()
        self.prometheus = self.alertmanager = None
        self.ports = {}
        self.ca = self.ca_file = None

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        try:
            self._make_user_objects()
            self.sinks.start()
            self.ports = {c: free_port() for c in COMPONENTS}
            self._start_alertmanager()
            self._start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in (self.prometheus, self.alertmanager):
            if p:
                p.stop()
        self.sinks.stop()

    def url(self, component):
        return f"https://127.0.0.1:{self.ports[component]}"

    def client(self, component, cafile=None):
        return Client(self.url(component), cafile or self.ca_file)

    # ------------------------------------------------------------------ setup
    def _make_user_objects(self):
        self.password_hash = bcrypt_hash(PASSWORD)
        self.values = {"global.web": web_values(self.release, self.namespace, self.password_hash),
                       "grafana.enabled": False, "loki.enabled": False, "promtail.enabled": False,
                       "jaeger.enabled": False, "prometheus.alerting.inCluster.discovery": "static",
                       **self.extra_values}
        self.ca, self.ca_file, self.wrong_ca_file, self.manifests = web_user_objects(
            self.workdir, self.values, COMPONENTS, self.release, self.namespace)

    def _localize(self, pod, args, drop):
        """The container's args with the listen/storage flags in `drop` removed and every path
        re-rooted; the web config file re-rooted in place (swap 1)."""
        out = reroot_args(pod, args, drop)
        for path in pod.root.rglob("client.yml"):
            path.write_text(yaml.safe_dump(pod.reroot_tree(yaml.safe_load(path.read_text())), sort_keys=False))
        self.swaps.add("every absolute path into a mount (arguments, configs, web config, client config) re-rooted")
        return out

    def _ready(self, component, path):
        client = self.client(component)
        return lambda: client.request(path)[0] == 200

    def _start_alertmanager(self):
        adir = self.workdir / "alertmanager"
        pod = PodFiles(self.manifests, "alertmanager", "alertmanager", adir / "root")
        self.am_pod = pod
        cfg_path = pod.local(flag(pod.args, "config.file"))
        cfg = swaps.alertmanager_config(yaml.safe_load(cfg_path.read_text()), pod, self.sinks, self.swaps)
        cfg_path.write_text(yaml.safe_dump(pod.reroot_tree(cfg), sort_keys=False))
        data = adir / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = [a for a in self._localize(pod, pod.args, ("web.listen-address", "storage.path"))
                if not a.startswith("--cluster.")]
        args += [f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}", "--cluster.listen-address=",
                 f"--storage.path={data}"]
        self.swaps.add("alertmanager: --web.listen-address=127.0.0.1:<port>, single instance, --storage.path=<tmp>")
        self.alertmanager = Process("alertmanager", [tools.require("alertmanager")] + args,
                                    adir / "alertmanager.log", self._ready("alertmanager", "/-/ready"),
                                    env=pod.env()).start()

    def _static_target(self, job, component):
        """Swap 3: the job's endpointslice discovery -> the labels that role gives the rendered
        Service's pod, at the local port."""
        svc = self.manifests.get("Service", f"{self.release}-{component}")
        port = next(p for p in svc["spec"]["ports"] if p["name"] == "http-web")
        labels = {"__meta_kubernetes_namespace": self.namespace,
                  "__meta_kubernetes_service_name": svc["metadata"]["name"],
                  "__meta_kubernetes_pod_name": f"{self.release}-{component}-0",
                  "__meta_kubernetes_endpointslice_port_name": port["name"]}
        for k, v in (svc["metadata"].get("annotations") or {}).items():
            safe = "".join(ch if ch.isalnum() else "_" for ch in k)
            labels[f"__meta_kubernetes_service_annotation_{safe}"] = str(v)
        labels["__meta_kubernetes_service_annotation_prometheus_io_port"] = str(self.ports[component])
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{self.ports[component]}"], "labels": labels}]
        self.swaps.add(f"prometheus job {job['job_name']}: endpointslice discovery -> a static target with the "
                       f"labels of the rendered Service's pod, prometheus.io/port = the local port")

    def _start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pod, cfg_path, cfg = prometheus_pod(self.manifests, pdir / "root")
        self.prom_pod = pod
        self.rendered_prometheus_config = copy.deepcopy(cfg)
        cfg["global"].update(evaluation_interval=self.interval, scrape_interval="2s", scrape_timeout="2s")
        jobs = []
        for job in cfg.get("scrape_configs") or []:
            for c in COMPONENTS:
                if job["job_name"] == f"monitoring-stack-{c}":
                    self._static_target(job, c)
                    jobs.append(job)
        cfg["scrape_configs"] = jobs
        self.swaps.add("prometheus: only the monitoring-stack jobs of the web config kept (no API server here); "
                       f"intervals {self.interval}/2s")
        for am in cfg["alerting"]["alertmanagers"]:
            swaps._map_static(am, "alerting", swaps.Local("", "", self.ports["prometheus"],
                                                          self.ports["alertmanager"], "", ""), self.swaps)
        if self.prometheus_config_hook:
            cfg = self.prometheus_config_hook(cfg)
        cfg_path.write_text(yaml.safe_dump(pod.reroot_tree(cfg), sort_keys=False))
        self.prometheus_config = cfg
        data = pdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = self._localize(pod, pod.args, ("web.listen-address", "storage.tsdb.path", "web.external-url"))
        args += [f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}", f"--storage.tsdb.path={data}",
                 "--rules.alert.resend-delay=2s"]
        self.prometheus = Process("prometheus", [tools.require("prometheus")] + args, pdir / "prometheus.log",
                                  self._ready("prometheus", "/-/ready"), env=pod.env()).start()

    # ------------------------------------------------------------------ the helm test pods
    def test_pod(self, component):
        """The rendered `helm test` pod of a component, its mounts laid out: (argv with the
        Service address pointed at the local process, PodFiles)."""
        name = f"{self.release}-test-{component}"
        obj = self.manifests.get("Pod", name)
        pod = PodFiles(self.manifests, component, "check", self.workdir / f"test-{component}" / "root", obj=obj)
        for path in pod.root.rglob("client.yml"):
            path.write_text(yaml.safe_dump(pod.reroot_tree(yaml.safe_load(path.read_text())), sort_keys=False))
        svc = f"://{self.release}-{component}:{self._svc_port(component)}"
        argv = []
        for a in pod.container["command"]:
            name, eq, value = a.partition("=")
            a = f"{name}={pod.reroot(value)}" if eq else a
            argv.append(a.replace(svc, f"://127.0.0.1:{self.ports[component]}"))
        self.swaps.add("helm test pods: the Service address -> the local process (the client config's "
                       "server_name still names the Service)")
        return argv, pod

    def _svc_port(self, component):
        svc = self.manifests.get("Service", f"{self.release}-{component}")
        return next(p for p in svc["spec"]["ports"] if p["name"] == "http-web")["port"]

    def run_tool(self, argv, timeout=30):
        """Run promtool/amtool (bin/) with argv[1:]: CompletedProcess."""
        return subprocess.run([tools.require(argv[0])] + argv[1:], capture_output=True, text=True, timeout=timeout)

    def wait(self, predicate, timeout, what):
        return wait_until(predicate, timeout, what, every=0.5,
                          retry=(urllib.error.URLError, ConnectionError, OSError, RuntimeError))
