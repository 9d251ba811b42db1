"""The door of the e2e stand-in kubelet (the synthetic per-node kubelet/cAdvisor server of
harness.workload, reached at the node's InternalIP:10250 through the pod network): TLS with a
serving certificate as a node has one, and every request authenticated and authorized against
the local API server as a kubelet of the pinned Kubernetes version (v1.37.2, tools.versions)
does with its KubeletConfiguration defaults (pkg/kubelet/apis/config/v1beta1/defaults.go:
authentication.anonymous.enabled false, authentication.webhook.enabled true, authorization.mode
Webhook; kubernetes docs "Kubelet authentication/authorization"). A stand-in: the series behind
the door are synthetic (harness.workload_metrics); the door is held to the kubelet's source by
tests/test_e2e_kubelet.py.

Serving certificate (KubeletDoor(serving=...)), one per node:
  SELF_SIGNED  the kubelet's default (no serverTLSBootstrap, no --tls-cert-file): client-go's
               cert.GenerateSelfSignedCertKey(<hostname>) - a CA of its own, "<host>-ca@<unix
               time>", signing "<host>@<unix time>" for the DNS name <host>, served as a bundle
               (the kubelet's keys are RSA 2048, the stand-in's EC P-256: quicker, same trust).
               No client can verify it: the chart's default prometheus.scrape.kubelet.
               insecureSkipVerify: true is for these nodes (kind and kubeadm's defaults).
  CLUSTER_CA   serverTLSBootstrap: true - the kubelet's CertificateSigningRequest (signerName
               kubernetes.io/kubelet-serving, CN system:node:<node>, O system:nodes, SANs the
               node's hostname and InternalIP, usages digital signature + server auth for an EC
               key), approved (by the harness, as a cluster's approver would: nothing approves
               serving CSRs by itself) and signed by the real kube-controller-manager with the
               cluster CA - the ca.crt of every ServiceAccount mount, which the chart's
               tls_config.ca_file names, so insecureSkipVerify: false verifies it.

Authentication (pkg/kubelet/server/server.go InstallAuthFilter): `Authorization: Bearer <token>`
goes to the API server as a TokenReview (no audiences: the kubelet sets none); no header,
another scheme or a token the API server does not authenticate -> 401 "Unauthorized".
(x509 client certificates, which a kubelet also accepts, are not asked for: nothing here scrapes
with one.)

Authorization: the request's attributes (attributes(), from pkg/kubelet/server/auth.go
GetRequestAttributes; KubeletFineGrainedAuthz is GA and locked on since 1.36) - verb from the
HTTP method, resource nodes, name the node, subresource by path: /metrics and /metrics/* (so
/metrics/cadvisor) -> metrics, /stats/* -> stats, /logs/* -> log, ..., anything else -> proxy -
each sent as a SubjectAccessReview; the request passes when one is allowed, else 403 with the
kubelet's own message "Forbidden (user=..., verb=..., resource=nodes, subresource(s)=[...])".

The kubelet calls both APIs with its own credentials: here a client certificate of the cluster CA
for system:node:<node> in system:nodes, so the API server's Node authorizer is what lets it.
The kubelet caches TokenReviews 2m, allowed SARs 5m, denied 30s; the stand-in caches each answer
CACHE_TTL seconds instead (shortened, so an RBAC change reaches the scrapes within seconds),
refreshing an expired answer beside the request that found it expired, and the Stack warms the
cache with the Prometheus token at start (warm()): on a loaded machine no scrape waits on the API
server, whose answers still decide every scrape.
"""
import datetime
import ipaddress
import json
import ssl
import threading
import time
import urllib.error
import urllib.request

SELF_SIGNED, CLUSTER_CA = "self-signed", "cluster-ca"
CACHE_TTL = 10.0

# pkg/kubelet/server/auth.go GetRequestAttributes (v1.37.2): HTTP method -> verb; paths ->
# subresources. FINE_GRAINED first (each also falls back to proxy), then exactly one of
# SUBRESOURCES, else proxy. Path constants: pkg/kubelet/server/server.go, and the apiserver's
# healthz/statusz/flagz and component-base's configz defaults.
VERBS = {"POST": "create", "GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
FINE_GRAINED = (("/allocatedPods", "pods"), ("/pods", "pods"), ("/healthz", "healthz"),
                ("/configz", "configz"), ("/runningpods/", "pods"))
SUBRESOURCES = (("/stats/", "stats"), ("/metrics", "metrics"), ("/logs/", "log"),
                ("/checkpoint/", "checkpoint"), ("/statusz", "statusz"), ("/flagz", "configz"))


def _is_subpath(request_path, path):
    path = path.rstrip("/")
    return request_path == path or (request_path.startswith(path) and request_path[len(path):len(path) + 1] == "/")


def subresources(path):
    """The subresources a kubelet authorizes a request for `path` as, in its order."""
    path = path.split("?", 1)[0]
    out = [sub for p, sub in FINE_GRAINED if _is_subpath(path, p)][:1]
    out += ([sub for p, sub in SUBRESOURCES if _is_subpath(path, p)] or ["proxy"])[:1]
    return out


def attributes(node, method, path):
    """The SubjectAccessReview resourceAttributes of one request, one per subresource."""
    return [{"namespace": "", "verb": VERBS.get(method, ""), "group": "", "version": "v1",
             "resource": "nodes", "subresource": sub, "name": node} for sub in subresources(path)]


class KubeletDoor:
    """The serving certificates and the authn/authz of every stand-in kubelet of one control
    plane (harness.controlplane.ControlPlane `cp`). serving: SELF_SIGNED or CLUSTER_CA."""

    def __init__(self, cp, serving=SELF_SIGNED, workdir=None):
        if serving not in (SELF_SIGNED, CLUSTER_CA):
            raise ValueError(f"kubelet serving certificate {serving!r}: {SELF_SIGNED} or {CLUSTER_CA}")
        self.cp, self.serving = cp, serving
        self.dir = workdir or (cp.dir / "kubelets")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._contexts = {}        # node -> server SSLContext
        self._clients = {}         # node -> client SSLContext (the kubelet's own credentials)
        self._cache = {}           # key -> (expiry, answer)
        self._refreshing = set()   # keys whose refresh runs
        self._lock = threading.Lock()
        self.reviews = 0           # TokenReviews + SubjectAccessReviews sent (for the report)

    # ------------------------------------------------------------------ TLS
    def server_context(self, node, ip):
        """The SSLContext the node's kubelet serves with (made on first use)."""
        with self._lock:
            ctx = self._contexts.get(node)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._load(ctx, node, ip, self.serving)
            with self._lock:
                ctx = self._contexts.setdefault(node, ctx)
        return ctx

    def rotate(self, node, ip, serving):
        """Serve `serving` (SELF_SIGNED or CLUSTER_CA) from now on, as a kubelet that rotates its
        certificate does: new connections get it."""
        self._load(self.server_context(node, ip), node, ip, serving)

    def _load(self, ctx, node, ip, serving):
        cert, key = (self._self_signed if serving == SELF_SIGNED else self._cluster_signed)(node, ip)
        ctx.load_cert_chain(str(cert), str(key))

    def _self_signed(self, node, ip):
        """client-go cert.GenerateSelfSignedCertKey(host=node): its own CA and a leaf for the
        DNS name `node`, the bundle leaf + CA."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = int(now.timestamp())
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node}-ca@{stamp}")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node}@{stamp}")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(node)]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        return self._write(f"{node}-self-signed", leaf.public_bytes(pem) + ca.public_bytes(pem), key)

    def _cluster_signed(self, node, ip):
        """serverTLSBootstrap: a CSR for kubernetes.io/kubelet-serving through the API server,
        approved, signed by kube-controller-manager with the cluster CA."""
        import base64

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        from .polling import wait_until
        key = ec.generate_private_key(ec.SECP256R1())
        req = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(ip))]),
                              critical=False)
               .sign(key, hashes.SHA256()))
        name = f"kubelet-serving-{node}-{time.time_ns()}"
        self.cp.api("/apis/certificates.k8s.io/v1/certificatesigningrequests", method="POST", body={
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode(),
                     "signerName": "kubernetes.io/kubelet-serving", "usages": ["digital signature", "server auth"]}})
        path = f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"
        csr = self.cp.api(path)
        csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "E2EHarness",
                                         "message": "the e2e harness approves its stand-in kubelets' serving CSRs"}]}
        self.cp.api(f"{path}/approval", method="PUT", body=csr)

        def issued():
            st = self.cp.api(path).get("status") or {}
            failed = [c for c in st.get("conditions") or [] if c["type"] in ("Failed", "Denied")]
            if failed:
                raise RuntimeError(f"CSR {name} for {node}'s kubelet: {failed}")
            return st.get("certificate")
        cert = wait_until(issued, 60, f"kube-controller-manager signs {name}", every=0.3, retry=())
        return self._write(f"{node}-cluster-ca", base64.b64decode(cert), key)

    def _write(self, stem, chain, key):
        from cryptography.hazmat.primitives import serialization
        cert_path, key_path = self.dir / f"{stem}.crt", self.dir / f"{stem}.key"
        cert_path.write_bytes(chain)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return cert_path, key_path

    # ------------------------------------------------------------------ authn / authz
    def _client(self, node):
        with self._lock:
            ctx = self._clients.get(node)
        if ctx is None:
            cert, key = self.cp.pki.client_cert(f"kubelet-client-{node}", f"system:node:{node}", "system:nodes")
            ctx = ssl.create_default_context(cafile=str(self.cp.pki.ca_cert))
            ctx.load_cert_chain(str(cert), str(key))
            with self._lock:
                ctx = self._clients.setdefault(node, ctx)
        return ctx

    def _review(self, node, path, body):
        """POST one review as the node's kubelet; the API server's answer (its status)."""
        req = urllib.request.Request(f"{self.cp.server}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        self.reviews += 1
        with urllib.request.urlopen(req, context=self._client(node), timeout=10) as r:
            return json.loads(r.read()).get("status") or {}

    def _cached(self, key, fn):
        """fn()'s answer, cached CACHE_TTL seconds. Past that, the old answer is given while one
        refresh runs beside (the next request gets the new one): no scrape waits on the API
        server but a node's very first, which warm() takes off the scrapes too."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            refresh = hit is not None and hit[0] <= now and key not in self._refreshing
            if refresh:
                self._refreshing.add(key)
        if hit is None:
            return self._store(key, fn())
        if refresh:
            threading.Thread(target=self._refresh, args=(key, fn), name="kubelet-auth-refresh", daemon=True).start()
        return hit[1]

    def _store(self, key, answer):
        with self._lock:
            self._cache[key] = (time.monotonic() + CACHE_TTL, answer)
        return answer

    def _refresh(self, key, fn):
        try:
            self._store(key, fn())
        except (urllib.error.URLError, OSError, ValueError):
            pass                   # the old answer stays until a refresh succeeds
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def warm(self, token, nodes, path="/metrics"):
        """Ask the API server now what the first scrape of each node's `path` with `token` would
        ask (TokenReview, SubjectAccessReviews), so that no first scrape waits on it (a loaded
        API server could outlast the e2e stack's 2 s scrape timeout). Whatever the answers, they
        are the API server's: a token or role it refuses is refused at the scrape."""
        for node in nodes:
            user = self.authenticate(node, f"Bearer {token}")
            if user is not None:
                self.authorize(node, user, attributes(node, "GET", path))

    def authenticate(self, node, authorization):
        """The user ({username, uid, groups, extra}) the bearer token in the Authorization header
        value `authorization` is, or None (401)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        status = self._cached(("token", node, token), lambda: self._review(
            node, "/apis/authentication.k8s.io/v1/tokenreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}))
        return status.get("user") if status.get("authenticated") else None

    def authorize(self, node, user, attrs):
        """Whether the API server allows `user` one of `attrs` (SubjectAccessReviews in order)."""
        for a in attrs:
            key = ("sar", node, user.get("username"), json.dumps(a, sort_keys=True))
            status = self._cached(key, lambda a=a: self._review(
                node, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                 "spec": {"user": user.get("username", ""), "uid": user.get("uid", ""),
                          "groups": user.get("groups") or [], "extra": user.get("extra") or {},
                          "resourceAttributes": a}}))
            if status.get("allowed"):
                return True
        return False

    def gate(self, node):
        """gate(method, path, headers) -> None to serve the request, else (status line, body):
        the kubelet's InstallAuthFilter for `node`. Blocking (API calls): run it off the loop."""
        def check(method, path, headers):
            try:
                user = self.authenticate(node, headers.get("authorization"))
            except (urllib.error.URLError, OSError, ValueError):
                user = None            # an authentication error is a 401 too
            if user is None:
                return "401 Unauthorized", b"Unauthorized"
            attrs = attributes(node, method, path)
            try:
                allowed = self.authorize(node, user, attrs)
            except (urllib.error.URLError, OSError, ValueError):
                a = attrs[0]
                return "500 Internal Server Error", (
                    f"Authorization error (user={user.get('username')}, verb={a['verb']}, resource=nodes, "
                    f"subresource={a['subresource']})").encode()
            if not allowed:
                subs = " ".join(a["subresource"] for a in attrs)
                return "403 Forbidden", (f"Forbidden (user={user.get('username')}, verb={attrs[0]['verb']}, "
                                         f"resource=nodes, subresource(s)=[{subs}])\n").encode()
            return None
        return check
