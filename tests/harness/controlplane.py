"""A real Kubernetes control plane on 127.0.0.1 with simulated nodes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the upstream binaries
(built by `make tools` into bin/, tools.versions); kwok plays the kubelets of three nodes
and the storage provisioner, with the project's own stages (kwok-stages.yaml). The API
server is the judge of what the chart's objects do at install time: admission (Pod
Security, NodeRestriction), RBAC, defaulting, immutable fields, evictions against PDBs,
Helm's `lookup`. No container runs: a pod is Running/Ready as soon as it is scheduled.

    with ControlPlane(workdir).start() as cp:      # ready in seconds
        cp.kubectl("get", "nodes")                  # cp.kubeconfig for helm and clients

Everything runs in its own process group and is stopped by stop() (SIGTERM, then SIGKILL),
which the context manager, the pytest fixtures and an atexit hook call; every port is a
free loopback port picked at start.
"""
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from . import tools
from .paths import BIN
from .polling import wait_until
from .ports import free_port
from .process import Process

STAGES = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODES = ("kwok-node-a", "kwok-node-b", "kwok-node-c")
NODE_CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
# Each simulated node's InternalIP (the node-up stage reads it from this annotation): distinct
# per node, so that a scrape of a node address (kubelet, cAdvisor) names one node.
NODE_IP_ANNOTATION = "kwok.phase5.test/internal-ip"
# StorageClasses: the default one allows volume expansion, "fixed" does not.
EXPANDABLE_CLASS, FIXED_CLASS = "standard", "fixed"


def node_ip(index):
    return f"10.0.0.{index + 1}"


def node_object(name, index, zone, labels=None, taints=None, annotations=None):
    """A kwok node. Its InternalIP is in the status it is created with (the API server keeps a
    Node's status on create, as a kubelet's registration does), not only in the one kwok's node
    stage writes: kwok gives a hostNetwork pod its node's IP from the node as kwok last saw it,
    and a DaemonSet pod bound to a node created moments before would otherwise get kwok's
    --node-ip (127.0.0.1), so all of them one address."""
    ip = node_ip(index)
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0",
                                                       NODE_IP_ANNOTATION: ip, **(annotations or {})},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok",
                                    "topology.kubernetes.io/zone": zone, **(labels or {})}},
            "spec": {"taints": list(taints or [])},
            "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY,
                       "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


def kubernetes_versions():
    """The Kubernetes versions tools.versions pins, newest first."""
    from .tools import pinned
    out = [version for module, version in pinned().values() if module == "k8s.io/kubernetes"]
    return sorted(out, key=lambda v: tuple(int(x) for x in v.lstrip("v").split(".")), reverse=True)


def binaries_dir(version):
    """bin/kubernetes/<version>/ (or $KUBE_BIN_DIR for the newest); fails in CI, skips outside."""
    override = os.environ.get("KUBE_BIN_DIR")
    d = Path(override) if override and version == kubernetes_versions()[0] else BIN / "kubernetes" / version
    missing = [b for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
               if not os.access(d / b, os.X_OK)]
    if missing:
        tools.require(f"kubernetes {version} ({', '.join(missing)} in {d})")
    return d


# ---------------------------------------------------------------------------------- PKI
class PKI:
    """A cluster CA, the API server's serving certificate, an admin client certificate
    (system:masters) and the service-account signing key, written to a directory."""

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        later = now + datetime.timedelta(days=2)

        def key():
            return ec.generate_private_key(ec.SECP256R1())

        def write_key(k, name):
            (self.dir / name).write_bytes(k.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            return self.dir / name

        def write_cert(c, name):
            (self.dir / name).write_bytes(c.public_bytes(serialization.Encoding.PEM))
            return self.dir / name

        def name(cn, org=None):
            attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
            if org:
                attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
            return x509.Name(attrs)

        ca_key = key()
        ca = (x509.CertificateBuilder().subject_name(name("phase5-test-ca")).issuer_name(name("phase5-test-ca"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(later)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))

        def leaf(subject, usage, sans=None):
            k = key()
            b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
                 .public_key(k.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now).not_valid_after(later)
                 .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                 .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
            if sans:
                b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            return k, b.sign(ca_key, hashes.SHA256())

        service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
        serving_key, serving = leaf(name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(service_ip),
            x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local")])
        admin_key, admin = leaf(name("phase5-test-admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
        sa_key = key()

        self.ca_cert, self.ca_key = write_cert(ca, "ca.crt"), write_key(ca_key, "ca.key")
        self.serving_cert, self.serving_key = write_cert(serving, "apiserver.crt"), write_key(serving_key, "apiserver.key")
        self.admin_cert, self.admin_key = write_cert(admin, "admin.crt"), write_key(admin_key, "admin.key")
        self.sa_key = write_key(sa_key, "sa.key")
        (self.dir / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.sa_pub = self.dir / "sa.pub"
        self._leaf, self._name, self._write_key, self._write_cert = leaf, name, write_key, write_cert

    def client_cert(self, file_stem, cn, org=None):
        """A client certificate signed by the cluster CA (the API server's --client-ca-file) for
        user `cn` in group `org`, as (cert path, key path): e.g. a node's kubelet credentials,
        system:node:<node> in system:nodes."""
        from cryptography.x509.oid import ExtendedKeyUsageOID
        k, c = self._leaf(self._name(cn, org), ExtendedKeyUsageOID.CLIENT_AUTH)
        return self._write_cert(c, f"{file_stem}.crt"), self._write_key(k, f"{file_stem}.key")


def _healthz(url):
    """Ready check of a component's own self-signed HTTPS /healthz (unauthenticated by default)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def ready():
        with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
            return r.status == 200
    return ready


# ------------------------------------------------------------------------ control plane
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on loopback."""

    def __init__(self, workdir=None, version=None, nodes=NODES, stages=STAGES, client_qps=None):
        self.version = version or kubernetes_versions()[0]
        # client_qps: the controller-manager's and scheduler's API client rate (--kube-api-qps,
        # burst twice that) instead of their defaults (20 and 50 per second), and kwok's pod
        # stages played in parallel (_kwok_options): a benchmark that creates thousands of pods
        # sets it so the ReplicaSet controller, the scheduler and kwok do not spend minutes
        # waiting on their own limits. None: the upstream defaults.
        self.client_qps = client_qps
        self.stages = Path(stages)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="p5-controlplane-")
            workdir = self._tmp.name
        self.dir = Path(workdir)
        self.nodes = tuple(nodes)
        self.processes = []
        self.kubeconfig = self.dir / "kubeconfig"
        self.server = None

    # -- lifecycle
    def start(self, timeout=120):
        bindir = binaries_dir(self.version)
        etcd, kwok = tools.require("etcd"), tools.require("kwok")
        self.kubectl_bin = str(bindir / "kubectl")
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start(bindir, etcd, kwok, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, bindir, etcd, kwok, timeout):
        pki = self.pki = PKI(self.dir / "pki")
        logs = self.dir / "logs"
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._run("etcd", [
            etcd, "--name=p5", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=p5=http://127.0.0.1:{peer_port}",
            f"--listen-metrics-urls=http://127.0.0.1:{free_port()}",
            "--unsafe-no-fsync", "--log-level=warn"], f"{etcd_url}/health", logs, timeout)

        self.server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfig()
        self._run("kube-apiserver", [
            str(bindir / "kube-apiserver"), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
            # A loopback advertise address is refused by the endpoint reconciler.
            "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--cert-dir={self.dir / 'apiserver'}", "--profiling=false", "--v=0"],
            self._readyz(self.server), logs, timeout)

        kc = str(self.kubeconfig)
        cm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
        self._run("kube-controller-manager", [
            str(bindir / "kube-controller-manager"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={cm_port}", "--leader-elect=false",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=false", "--profiling=false", "--v=0", *self._qps()],
            _healthz(f"https://127.0.0.1:{cm_port}/healthz"), logs, timeout)
        self._run("kube-scheduler", [
            str(bindir / "kube-scheduler"), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={sched_port}", "--leader-elect=false",
            "--profiling=false", "--v=0", *self._qps()], _healthz(f"https://127.0.0.1:{sched_port}/healthz"), logs, timeout)
        self._run("kwok", [
            kwok, f"--kubeconfig={kc}", f"--config={self.stages}", *self._kwok_options(),
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{kwok_port}"], f"http://127.0.0.1:{kwok_port}/healthz", logs, timeout)

        self._bootstrap()
        self.wait_nodes_ready(timeout)

    def _qps(self):
        if not self.client_qps:
            return []
        return [f"--kube-api-qps={self.client_qps}", f"--kube-api-burst={2 * self.client_qps}"]

    def _kwok_options(self):
        """With client_qps, kwok plays pod stages 32 at a time (its default 4 made pods Running
        at about 8 per second, ten thousand pods in twenty minutes): a KwokConfiguration file
        beside the stages (kwok's --config takes several)."""
        if not self.client_qps:
            return []
        path = self.dir / "kwok-options.yaml"
        path.write_text(json.dumps({"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration",
                                    "options": {"podPlayStageParallelism": 32, "nodePlayStageParallelism": 8,
                                                # a KwokConfiguration of our own leaves kwok's other
                                                # defaults unset: the ones it refuses at 0
                                                "nodeLeaseParallelism": 4, "podsOnNodeSyncParallelism": 1}}))
        return [f"--config={path}"]

    def _run(self, name, argv, ready, logs, timeout):
        p = Process(name, argv, logs / f"{name}.log", ready)
        self.processes.append(p)
        p.start(timeout=timeout)
        return p

    def stop(self):
        for p in reversed(self.processes):
            p.stop(timeout=15)
        self.processes.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        """Names of processes that exited on their own (empty when all run)."""
        return [p.name for p in self.processes if p.proc is None or p.proc.poll() is not None]

    def logs(self, name, n=40):
        for p in self.processes:
            if p.name == name:
                return p.log_tail(n)
        return "(no such process)"

    # -- access
    def _ssl(self):
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _readyz(self, server):
        def ready():
            with urllib.request.urlopen(f"{server}/readyz", context=self._ssl(), timeout=3) as r:
                return r.status == 200
        return ready

    def _write_kubeconfig(self):
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "phase5-local",
            "clusters": [{"name": "phase5-local", "cluster": {
                "server": self.server, "certificate-authority": str(self.pki.ca_cert)}}],
            "users": [{"name": "admin", "user": {
                "client-certificate": str(self.pki.admin_cert), "client-key": str(self.pki.admin_key)}}],
            "contexts": [{"name": "phase5-local", "context": {"cluster": "phase5-local", "user": "admin"}}],
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2))
        self.kubeconfig.chmod(0o600)

    def env(self):
        """Environment for helm/kubectl/scripts pointed at this cluster only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "HELM_"))}
        env.update(KUBECONFIG=str(self.kubeconfig), HELM_CACHE_HOME=str(self.dir / "helm" / "cache"),
                   HELM_CONFIG_HOME=str(self.dir / "helm" / "config"),
                   HELM_DATA_HOME=str(self.dir / "helm" / "data"))
        return env

    def kubectl(self, *args, check=True, input=None, timeout=120):
        proc = subprocess.run([self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
                              capture_output=True, text=True, input=input, timeout=timeout, env=self.env())
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def apply(self, objects):
        """Server-side apply of a list of dicts (as the harness's field manager)."""
        docs = "\n---\n".join(json.dumps(o) for o in objects)
        return self.kubectl("apply", "--server-side", "--field-manager=phase5-harness", "-f", "-", input=docs)

    def get(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def api(self, path, method="GET", body=None, content_type="application/json", timeout=10):
        """One request to the API server as the admin user (JSON in and out): faster than a
        kubectl process when a harness thread polls."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        with urllib.request.urlopen(req, context=self._ssl_ctx(), timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def _ssl_ctx(self):
        if getattr(self, "_ctx", None) is None:
            self._ctx = self._ssl()
        return self._ctx

    # -- bootstrap: nodes and StorageClasses
    def _bootstrap(self):
        # The default namespace and the RBAC bootstrap appear shortly after readyz.
        wait_until(lambda: self.kubectl("get", "namespace", "default", check=False).returncode == 0, 60,
                   "namespace default appeared", every=0.3, retry=(), error=RuntimeError)
        zones = ("zone-a", "zone-b", "zone-c")
        nodes = [node_object(n, i, zones[i % len(zones)]) for i, n in enumerate(self.nodes)]
        classes = [{
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true" if name == EXPANDABLE_CLASS else "false"}},
            "provisioner": "kwok.x-k8s.io/volume", "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate", "allowVolumeExpansion": expandable}
            for name, expandable in ((EXPANDABLE_CLASS, True), (FIXED_CLASS, False))]
        for obj in nodes + classes:
            self.kubectl("create", "-f", "-", input=json.dumps(obj))

    def add_node(self, name, zone="zone-a", labels=None, taints=None, annotations=None):
        obj = node_object(name, len(self.nodes), zone, labels, taints, annotations)
        self.kubectl("create", "-f", "-", input=json.dumps(obj))
        self.nodes += (name,)

    def wait_nodes_ready(self, timeout=120, names=None):
        """Every node (of `names`, when given) Ready and without the node.kubernetes.io/ taints
        (node lifecycle ran; a cordoned node's unschedulable taint counts as not ready)."""
        want = set(names or self.nodes)

        def ready():
            items = [n for n in self.get("nodes")["items"] if n["metadata"]["name"] in want]
            if len(items) < len(want):
                return False
            for n in items:
                cond = {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}
                taints = [t["key"] for t in n["spec"].get("taints", []) if t["key"].startswith("node.kubernetes.io/")]
                if cond.get("Ready") != "True" or taints:
                    return False
            return True
        self.wait(ready, timeout, "nodes Ready without not-ready taints")

    def wait(self, check, timeout, what, every=0.5):
        """wait_until(), failing at once when a control-plane process has exited."""
        def guarded():
            dead = self.alive()
            if dead:
                raise RuntimeError(f"control plane process exited: {dead}\n{self.logs(dead[0])}")
            return check()
        return wait_until(guarded, timeout, what, every, fatal=(RuntimeError,))

    # -- Kubernetes version as the server reports it
    def server_version(self):
        return json.loads(self.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]


def workloads_ready(cp, namespace, selector=None):
    """Every Deployment, StatefulSet and DaemonSet at its desired ready count, every PVC Bound.
    Returns a list of what is not (empty when all is ready)."""
    sel = ["-l", selector] if selector else []
    bad = []
    for kind in ("deployments", "statefulsets", "daemonsets"):
        for o in cp.get(kind, "-n", namespace, *sel)["items"]:
            st, name = o.get("status", {}), f"{o['kind']}/{o['metadata']['name']}"
            want = st.get("desiredNumberScheduled") if kind == "daemonsets" else o["spec"].get("replicas", 1)
            have = st.get("numberReady" if kind == "daemonsets" else "readyReplicas", 0)
            if want is None or have != want or want == 0 and kind == "daemonsets":
                bad.append(f"{name}: {have}/{want} ready")
    for pvc in cp.get("pvc", "-n", namespace, *sel)["items"]:
        if pvc.get("status", {}).get("phase") != "Bound":
            bad.append(f"PVC/{pvc['metadata']['name']}: {pvc.get('status', {}).get('phase')}")
    return bad
