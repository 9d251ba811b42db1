"""e2e tier, issue 30: the kubelet and cAdvisor scrape jobs run as rendered - https to the node's
InternalIP:10250, the ServiceAccount token as `authorization`, `tls_config` - against the
stand-in kubelet (harness.kubelet), which serves TLS and authorizes every request with
TokenReview and SubjectAccessReview against the real API server, as a kubelet does.

One stack, rendered with prometheus.scrape.kubelet.insecureSkipVerify=false and kubelets whose
serving certificates the cluster CA signed (serverTLSBootstrap: a kubelet-serving CSR signed by
kube-controller-manager), so Prometheus verifies each kubelet against the ServiceAccount's
ca.crt the chart names. The chart's default (insecureSkipVerify: true, for the self-signed
serving certificates a kubelet makes by default) runs in every other e2e module's stack, whose
stand-in kubelets are self-signed. This module proves:
- the targets are up over https with the rendered tls_config and token, verified;
- the kubelet's answers: 401 without a token or with one the API server does not authenticate,
  403 for a token whose user the API server does not allow nodes/metrics, and the chart's
  ClusterRole allows nodes/metrics and nothing else of a kubelet (not /pods, not /healthz);
- without nodes/metrics in the chart's ClusterRole the scrapes get 403 (the targets down with
  that error): the ClusterRole is what lets Prometheus in;
- with verification on, a kubelet serving a certificate the cluster CA did not sign is down
  with an x509 error.
And the stand-in's request-to-attributes table (harness.kubelet) is the pinned kubelet's.
"""
import http.client
import re
import ssl
from pathlib import Path

import pytest

from harness import kubelet, tools
from harness.controlplane import NODES
from harness.podfiles import PodFiles, find_workload
from harness.stack import Stack
from harness.workload import PHASE5_SERVICES, Workload

pytestmark = pytest.mark.e2e

JOBS = ("kubelet", "cadvisor")
PATHS = {"kubelet": "/metrics", "cadvisor": "/metrics/cadvisor"}
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    st = Stack(tmp_path_factory.mktemp("e2e-kubelet"),
               set_values={"prometheus.scrape.kubelet.insecureSkipVerify": False},
               workload=Workload(services=PHASE5_SERVICES[:2]), kubelet_serving=kubelet.CLUSTER_CA)
    request.addfinalizer(st.stop)
    st.start()
    return st


def _kubelet_targets(stack):
    return [t for t in stack.targets() if t["labels"]["job"] in JOBS]


def _all_up(stack):
    ts = _kubelet_targets(stack)
    return len(ts) == len(JOBS) * len(NODES) and all(t["health"] == "up" for t in ts) and ts


def _prometheus_sa(stack):
    return find_workload(stack.manifests, "prometheus")["spec"]["template"]["spec"]["serviceAccountName"]


def _cluster_role(stack):
    """The chart's ClusterRole bound to its Prometheus ServiceAccount."""
    sa = _prometheus_sa(stack)
    for b in stack.manifests.of_kind("ClusterRoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa for s in b.get("subjects") or []):
            return b["roleRef"]["name"]
    raise AssertionError(f"no ClusterRoleBinding of ServiceAccount {sa} in the render")


def _get(stack, node, path, authorization=None):
    """GET https://<node's InternalIP>:10250<path> through the pod network (CONNECT), verifying
    the kubelet's certificate against the cluster CA: (status, body)."""
    ip = stack.cluster.snapshot.node_ip(node)
    ctx = ssl.create_default_context(cafile=str(stack.cp.pki.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", stack.net.port, context=ctx, timeout=15)
    conn.set_tunnel(ip, 10250)
    try:
        conn.request("GET", path, headers={"Authorization": authorization} if authorization else {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_kubelet_and_cadvisor_targets_are_up_over_https_with_the_rendered_config(stack):
    rendered = PodFiles(stack.manifests, "prometheus", "prometheus", stack.workdir / "check" / "prometheus")
    import yaml
    from harness.podfiles import flag
    orig = {j["job_name"]: j for j in yaml.safe_load(rendered.local(flag(rendered.args, "config.file")).read_text())
            ["scrape_configs"]}
    running = {j["job_name"]: j for j in stack.prom_config["scrape_configs"]}
    prom_root = stack.workdir / "prometheus" / "root"
    for job in JOBS:
        want, got = orig[job], running[job]
        assert want["scheme"] == got["scheme"] == "https", f"{job}: scheme {got.get('scheme')}"
        # the rendered token and CA, at the local copy of the pod's ServiceAccount mount
        assert want["authorization"] == {"credentials_file": f"{SA_DIR}/token"}, want["authorization"]
        assert got["authorization"] == {"credentials_file": str(prom_root / SA_DIR.lstrip("/") / "token")}, got
        assert want["tls_config"] == {"ca_file": f"{SA_DIR}/ca.crt", "insecure_skip_verify": False}, want["tls_config"]
        assert got["tls_config"] == {"ca_file": str(prom_root / SA_DIR.lstrip("/") / "ca.crt"),
                                     "insecure_skip_verify": False}, got["tls_config"]
        assert {k: v for k, v in got.items() if k not in ("authorization", "tls_config", "kubernetes_sd_configs",
                                                           "proxy_url")} == \
            {k: v for k, v in want.items() if k not in ("authorization", "tls_config", "kubernetes_sd_configs",
                                                        "scrape_interval", "scrape_timeout")}, f"{job} changed"
    ts = stack.wait(lambda: _all_up(stack), 60, what="every kubelet and cAdvisor target up")
    urls = {(t["labels"]["job"], t["scrapeUrl"]) for t in ts}
    ips = [stack.cluster.snapshot.node_ip(n) for n in NODES]
    assert urls == {(job, f"https://{ip}:10250{PATHS[job]}") for job in JOBS for ip in ips}, urls
    assert stack.query('container_memory_working_set_bytes{job="cadvisor"}'), "no cAdvisor series stored"
    assert stack.kubelet_door.reviews, "the stand-in kubelets asked the API server nothing"


def test_the_kubelet_answers_401_without_a_valid_token_and_403_when_the_api_server_denies(stack):
    node = NODES[0]
    ns = stack.namespace
    prom = stack.cluster.token(ns, _prometheus_sa(stack))
    other = stack.cluster.token(ns, "default")        # a ServiceAccount no role lets near a node
    for auth in (None, "Bearer", "Bearer not-a-token", f"Basic {prom}", f"Token {prom}"):
        status, body = _get(stack, node, "/metrics", auth)
        assert (status, body) == (401, "Unauthorized"), f"Authorization {auth and auth[:12]!r}: {status} {body!r}"
    for path in PATHS.values():
        status, body = _get(stack, node, path, f"Bearer {other}")
        assert status == 403, f"{path} as {ns}/default: {status} {body[:200]!r}"
        assert body == (f"Forbidden (user=system:serviceaccount:{ns}:default, verb=get, resource=nodes, "
                        f"subresource(s)=[metrics])\n"), body
        status, body = _get(stack, node, path, f"Bearer {prom}")
        assert status == 200 and "# TYPE" in body, f"{path} as Prometheus: {status} {body[:200]!r}"
    # The chart's ClusterRole lets Prometheus read metrics, not the rest of the kubelet's API.
    for path, subs in (("/pods", "pods proxy"), ("/healthz", "healthz proxy"), ("/stats/summary", "stats"),
                       ("/logs/", "log"), ("/", "proxy")):
        status, body = _get(stack, node, path, f"Bearer {prom}")
        assert status == 403 and body.endswith(f"subresource(s)=[{subs}])\n"), f"{path}: {status} {body!r}"


def test_without_nodes_metrics_in_the_chart_clusterrole_the_scrapes_get_403(stack):
    stack.wait(lambda: _all_up(stack), 60, what="every kubelet and cAdvisor target up")
    name = _cluster_role(stack)
    path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"
    role = stack.cp.api(path)
    rules = role["rules"]
    assert any("nodes/metrics" in r.get("resources", []) and "get" in r.get("verbs", []) for r in rules), rules
    cut = [r for r in rules if "nodes/metrics" not in r.get("resources", [])]
    stack.cluster.patch(path, {"rules": cut})
    try:
        def denied():
            ts = _kubelet_targets(stack)
            return (len(ts) == len(JOBS) * len(NODES)
                    and all(t["health"] == "down" and "403 Forbidden" in t["lastError"] for t in ts) and ts)
        stack.wait(denied, 60, what="every kubelet and cAdvisor target down with 403 once nodes/metrics is gone")
        # discovery still works (nodes list): the targets are there, refused by the kubelets
        status, body = _get(stack, NODES[0], "/metrics/cadvisor",
                            f"Bearer {stack.cluster.token(stack.namespace, _prometheus_sa(stack))}")
        assert status == 403 and "subresource(s)=[metrics]" in body, (status, body)
    finally:
        stack.cluster.patch(path, {"rules": rules})
    stack.wait(lambda: _all_up(stack), 60, what="the targets up again with the ClusterRole restored")


def test_with_verification_on_a_kubelet_certificate_not_of_the_cluster_ca_is_refused(stack):
    stack.wait(lambda: _all_up(stack), 60, what="every kubelet and cAdvisor target up")
    node = NODES[1]
    ip = stack.cluster.snapshot.node_ip(node)
    stack.workload.rotate_kubelet_certificate(node, ip, kubelet.SELF_SIGNED)
    try:
        def refused():
            mine = [t for t in _kubelet_targets(stack) if t["labels"]["instance"] == node]
            return (len(mine) == len(JOBS) and all(t["health"] == "down" and "x509" in t["lastError"] for t in mine)
                    and mine)
        stack.wait(refused, 60, what=f"{node}'s targets down with an x509 error (self-signed kubelet certificate)")
        others = [t for t in _kubelet_targets(stack) if t["labels"]["instance"] != node]
        assert all(t["health"] == "up" for t in others), [(t["scrapeUrl"], t["lastError"]) for t in others]
    finally:
        stack.workload.rotate_kubelet_certificate(node, ip, kubelet.CLUSTER_CA)
    stack.wait(lambda: _all_up(stack), 60, what=f"{node}'s targets up again with a cluster-CA certificate")


def _pinned_source(module, version, rel):
    import subprocess
    try:
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        cache = ""
    src = Path(cache or "/nonexistent") / f"{module}@{version}" / rel
    if not src.exists():
        tools.require(f"the pinned source {src} (the Go module cache `make tools` fills)")
    return src.read_text()


def test_the_stand_in_maps_requests_to_attributes_as_the_pinned_kubelet():
    """harness.kubelet's tables are the pinned kubelet's GetRequestAttributes
    (pkg/kubelet/server/auth.go): the fine-grained switch and the subresource switch, in order,
    each path constant resolved from its source (server.go; k8s.io/apiserver's healthz, statusz,
    flagz; k8s.io/component-base's configz), and the HTTP method -> verb switch."""
    module, version = tools.pinned()["kubernetes"]
    staging = "v0." + version.lstrip("v").split(".", 1)[1]
    auth = _pinned_source(module, version, "pkg/kubelet/server/auth.go")
    server = _pinned_source(module, version, "pkg/kubelet/server/server.go")
    consts = dict(re.findall(r'^\s+(\w+Path)\s+= "([^"]+)"', server, re.M))
    for pkg, mod, rel in (("healthz", "k8s.io/apiserver", "pkg/server/healthz/healthz.go"),
                          ("statusz", "k8s.io/apiserver", "pkg/server/statusz/statusz.go"),
                          ("flagz", "k8s.io/apiserver", "pkg/server/flagz/flagz.go"),
                          ("configz", "k8s.io/component-base", "configz/configz.go")):
        for name, value in re.findall(r'^const (Default\w+Path) = "([^"]+)"', _pinned_source(mod, staging, rel), re.M):
            consts[f"{pkg}.{name}"] = value
    fine, _, rest = auth.partition("KubeletFineGrainedAuthz")[2].partition("\n\t}\n")
    case = r'case isSubpath\(requestPath, ([\w.]+)\):\s+(?://[^\n]*\s+)*subresources = append\(subresources, "(\w+)"\)'
    got_fine = [(consts[c], sub) for c, sub in re.findall(case, fine)]
    got_subs = [(consts[c], sub) for c, sub in re.findall(case, rest)]
    assert got_fine == list(kubelet.FINE_GRAINED), got_fine
    assert got_subs == list(kubelet.SUBRESOURCES), got_subs
    assert 'default:\n\t\tsubresources = append(subresources, "proxy")' in rest
    verbs = dict(re.findall(r'case "([A-Z]+)":\s+apiVerb = "([a-z]+)"', auth))
    assert verbs == kubelet.VERBS, verbs
    # what the chart's jobs ask for
    assert kubelet.attributes("n", "GET", "/metrics/cadvisor") == kubelet.attributes("n", "GET", "/metrics") == [
        {"namespace": "", "verb": "get", "group": "", "version": "v1", "resource": "nodes",
         "subresource": "metrics", "name": "n"}]
    # the fine-grained switch is on unconditionally since it went GA and locked
    feats = _pinned_source(module, version, "pkg/features/kube_features.go")
    gate = feats.partition("\tKubeletFineGrainedAuthz: {\n")[2].partition("\n\t},")[0]
    assert "GA, LockToDefault: true" in gate, gate
