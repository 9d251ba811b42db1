"""The e2e stack's cluster: a real API server (harness.controlplane) holding the chart's objects
and the synthetic Phase 5 workload as real objects, with kwok running their pods.

What lives in the API server, and who decides what:
- the chart's rendered objects (ServiceAccounts, the Prometheus ClusterRole and binding,
  Services, StatefulSets, DaemonSets, ...) applied server-side as rendered; the API server's
  controllers make the ReplicaSets, pods and EndpointSlices, the scheduler places the pods,
  kwok reports them Running with a pod IP from 10.244.0.0/16;
- the Phase 5 workload (harness.workload builds the objects): Deployments, StatefulSets,
  Services annotated as docs/integration.md asks, HorizontalPodAutoscalers;
- faults are API operations: a pod made not ready (the kwok stage pod-not-ready reacts to an
  annotation), a container's restart count reported in the pod's status (as a kubelet would),
  a Deployment scaled beyond what the nodes hold, an HPA's maximum reached, a node drained, a
  node reporting NotReady (the kwok stage node-not-ready reacts to an annotation; the node
  lifecycle controller then taints it; its pods are marked not ready as that controller does
  for a node gone silent, see set_node_not_ready).

`Snapshot` is the list of every object the harness reads back (every second by `watch()`),
from which the synthetic kube-state-metrics, cAdvisor and kubelet series are derived and the
pod network (harness.podnet) routes a pod address to the process that plays the pod.
"""
import dataclasses
import threading
import time
import traceback

from .polling import wait_until

_LISTS = {
    "pods": "/api/v1/pods",
    "nodes": "/api/v1/nodes",
    "namespaces": "/api/v1/namespaces",
    "services": "/api/v1/services",
    "deployments": "/apis/apps/v1/deployments",
    "replicasets": "/apis/apps/v1/replicasets",
    "statefulsets": "/apis/apps/v1/statefulsets",
    "daemonsets": "/apis/apps/v1/daemonsets",
    "hpas": "/apis/autoscaling/v2/horizontalpodautoscalers",
    "jobs": "/apis/batch/v1/jobs",
    "pvcs": "/api/v1/persistentvolumeclaims",
}


def _key(obj):
    md = obj["metadata"]
    return (md.get("namespace", ""), md["name"])


def ready(pod):
    """The pod's Ready condition as the API server holds it."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


@dataclasses.dataclass
class Snapshot:
    pods: list
    nodes: list
    namespaces: list
    services: list
    deployments: list
    replicasets: list
    statefulsets: list
    daemonsets: list
    hpas: list
    jobs: list
    pvcs: list

    def __post_init__(self):
        self._rs = {_key(r): r for r in self.replicasets}
        self._by_owner = None       # (namespace, kind, name) -> pods_of(), built on first use

    def owner(self, pod):
        """(kind, name) of the workload that owns `pod`: Deployment through its ReplicaSet,
        StatefulSet, DaemonSet; ("", "") for a bare pod."""
        for ref in pod["metadata"].get("ownerReferences") or []:
            if not ref.get("controller"):
                continue
            if ref["kind"] == "ReplicaSet":
                rs = self._rs.get((pod["metadata"]["namespace"], ref["name"]))
                for rref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
                    if rref.get("controller"):
                        return rref["kind"], rref["name"]
            return ref["kind"], ref["name"]
        return "", ""

    def pods_of(self, namespace, kind, name):
        """Live (not deleted) pods of a workload, oldest first (then by name): the first stays
        the first when the workload scales up. Every workload's list is built in one pass over
        the pods the first time one is asked for (a snapshot does not change): each scrape of a
        synthetic pod asks, and ten thousand pods made a pass per scrape quadratic."""
        if self._by_owner is None:
            by = {}
            for p in self.pods:
                if not p["metadata"].get("deletionTimestamp"):
                    by.setdefault((p["metadata"]["namespace"], *self.owner(p)), []).append(p)
            for pods in by.values():
                pods.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
            self._by_owner = by
        return list(self._by_owner.get((namespace, kind, name), ()))

    def pvc(self, namespace, name):
        for c in self.pvcs:
            if (c["metadata"]["namespace"], c["metadata"]["name"]) == (namespace, name):
                return c
        return None

    def node_ip(self, node_name):
        for n in self.nodes:
            if n["metadata"]["name"] == node_name:
                for a in n.get("status", {}).get("addresses") or []:
                    if a["type"] == "InternalIP":
                        return a["address"]
        return ""


class SimCluster:
    """The chart and the Phase 5 workload as objects in a running ControlPlane."""

    def __init__(self, cp):
        self.cp = cp
        self.snapshot = None
        self._listeners = []
        self._stop = threading.Event()
        self._thread = None
        self.errors = []

    # ------------------------------------------------------------------ objects
    def install(self, manifests, namespace):
        """Apply the rendered objects server-side (hooks and `helm test` pods left out, as
        `helm install` creates them only on their events)."""
        self.ensure_namespace(namespace)
        objs = [o for o in manifests
                if not (o["metadata"].get("annotations") or {}).get("helm.sh/hook")]
        objs = [{**o, "metadata": {**o["metadata"], "namespace": namespace}}
                if _namespaced(o["kind"]) and not o["metadata"].get("namespace") else o for o in objs]
        self.cp.apply(objs)

    def ensure_namespace(self, name, labels=None):
        self.cp.apply([{"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": dict(labels or {})}}])

    def token(self, namespace, service_account, hours=6):
        """A token for the ServiceAccount from the TokenRequest API (what the kubelet mounts)."""
        return self.cp.kubectl("create", "token", service_account, "-n", namespace,
                               f"--duration={hours}h").stdout.strip()

    # ------------------------------------------------------------------ reading back
    def refresh(self):
        lists = {name: self.cp.api(path)["items"] for name, path in _LISTS.items()}
        # Nothing reads who wrote which field, and it was 40% of the pods' JSON (2.2 of 5.6 MiB
        # at 1,017 pods): dropped, so a snapshot of ten thousand pods holds less.
        for items in lists.values():
            for o in items:
                o["metadata"].pop("managedFields", None)
        self.snapshot = Snapshot(**lists)
        return self.snapshot

    def on_refresh(self, fn):
        """fn(snapshot) after every refresh of the watch thread."""
        self._listeners.append(fn)

    def watch(self, every=1.0):
        """Refresh every `every` seconds, or, where one refresh and its listeners take longer
        than a third of that (thousands of pods: the lists and the routes grow with them), wait
        twice what the last took: the harness's reading back never uses more than a third of
        a core, whatever the cluster's size."""
        def run():
            took = 0.0
            while not self._stop.wait(max(every, 2 * took)):
                try:
                    t0 = time.monotonic()
                    snap = self.refresh()
                    for fn in self._listeners:
                        fn(snap)
                    took = time.monotonic() - t0
                except Exception as e:  # noqa: BLE001 - kept for the test's report, the loop goes on
                    where = traceback.extract_tb(e.__traceback__)[-1]
                    self.errors.append(f"{time.strftime('%H:%M:%S')} {type(e).__name__}: {e} "
                                       f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
                    del self.errors[:-20]
        self._thread = threading.Thread(target=run, name="simcluster-watch", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_settled(self, namespaces, timeout=120, every=1.0):
        """Every pod of `namespaces` Running, Ready and with an IP; every Deployment and
        StatefulSet at its ready count. Each check lists everything afresh: a benchmark with
        thousands of pods checks less often (`every`)."""
        def settled():
            snap = self.refresh()
            bad = []
            for p in snap.pods:
                md = p["metadata"]
                if md["namespace"] not in namespaces or md.get("deletionTimestamp"):
                    continue
                st = p.get("status", {})
                if st.get("phase") != "Running" or not st.get("podIP") or not ready(p):
                    bad.append(f"{md['namespace']}/{md['name']}: {st.get('phase')} ip={st.get('podIP')}")
            for kind, items in (("Deployment", snap.deployments), ("StatefulSet", snap.statefulsets)):
                for o in items:
                    if o["metadata"]["namespace"] in namespaces:
                        want = o["spec"].get("replicas", 1)
                        if o.get("status", {}).get("readyReplicas", 0) != want:
                            bad.append(f"{kind}/{o['metadata']['name']}: {o.get('status', {}).get('readyReplicas', 0)}/{want} ready")
            if bad:
                raise AssertionError("; ".join(bad[:8]))
            return True
        wait_until(settled, timeout, f"pods of {sorted(namespaces)} running", every=every)

    # ------------------------------------------------------------------ faults, through the API
    def patch(self, path, body, patch_type="merge"):
        ctype = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}[patch_type]
        return self.cp.api(path, method="PATCH", body=body, content_type=ctype)

    def set_pod_not_ready(self, namespace, pod, not_ready=True):
        """kwok's pod-not-ready stage turns the pod's Ready condition False while the
        annotation is there (pod-ready-again turns it back)."""
        self.patch(f"/api/v1/namespaces/{namespace}/pods/{pod}",
                   {"metadata": {"annotations": {"kwok.phase5.test/not-ready": "true" if not_ready else None}}})

    def set_restart_count(self, namespace, pod, count):
        """Report `count` restarts of every container of the pod, as its kubelet would after
        the container crashed that many times."""
        obj = self.cp.api(f"/api/v1/namespaces/{namespace}/pods/{pod}")
        statuses = obj.get("status", {}).get("containerStatuses") or []
        if not statuses:
            return
        for s in statuses:
            s["restartCount"] = count
        self.patch(f"/api/v1/namespaces/{namespace}/pods/{pod}/status", {"status": {"containerStatuses": statuses}})

    def set_node_not_ready(self, node, not_ready=True):
        """kwok's node-not-ready stage reports the node's Ready condition False while the
        annotation is there (node-up reports it Ready again once it is gone), as a kubelet
        whose container runtime failed does; the real node lifecycle controller taints it.

        Stand-in for one controller step: for a node that stops reporting, the node lifecycle
        controller turns the Ready condition of every pod on it False (MarkPodsNotReady: Ready
        only, ContainersReady untouched) once the node's Lease is older than its grace period.
        kwok keeps renewing the Lease of every node it manages, so that never happens here; the
        harness makes the same change through the pods' status subresource instead (kwok's
        pod-ready-again leaves such a pod alone: it reverts only what pod-not-ready did)."""
        self.patch(f"/api/v1/nodes/{node}",
                   {"metadata": {"annotations": {"kwok.phase5.test/not-ready": "true" if not_ready else None}}})
        if not not_ready:
            return

        def reported():
            obj = self.cp.api(f"/api/v1/nodes/{node}")
            return any(c["type"] == "Ready" and c["status"] == "False" for c in obj["status"].get("conditions") or [])
        wait_until(reported, 30, f"node {node} reporting Ready False", every=0.5)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for p in self.cp.api(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")["items"]:
            md = p["metadata"]
            if md.get("deletionTimestamp") or p.get("status", {}).get("phase") != "Running":
                continue
            self.patch(f"/api/v1/namespaces/{md['namespace']}/pods/{md['name']}/status",
                       {"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]}},
                       "strategic")

    def scale(self, namespace, deployment, replicas):
        self.patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale",
                   {"spec": {"replicas": replicas}})

    def set_hpa_max(self, namespace, hpa, max_replicas):
        self.patch(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{hpa}",
                   {"spec": {"maxReplicas": max_replicas}})

    def drain(self, node, timeout=60):
        """`kubectl drain`: cordon the node, evict its pods (DaemonSets stay), as an operator does."""
        return self.cp.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                               "--grace-period=1", f"--timeout={timeout}s", timeout=timeout + 30)


_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass", "PersistentVolume",
                   "CustomResourceDefinition", "PriorityClass", "Node", "ValidatingWebhookConfiguration",
                   "MutatingWebhookConfiguration", "IngressClass"}


def _namespaced(kind):
    return kind not in _CLUSTER_SCOPED

