"""An index over rendered Kubernetes objects: by kind, by name, by component."""
import collections


def _component(obj):
    return (obj.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name", "")


class Manifests:
    def __init__(self, docs):
        self.docs = [d for d in docs if isinstance(d, dict) and d.get("kind")]
        self._by_kind = collections.defaultdict(list)
        for d in self.docs:
            self._by_kind[d["kind"]].append(d)

    def __iter__(self):
        return iter(self.docs)

    def __len__(self):
        return len(self.docs)

    def of_kind(self, kind):
        return list(self._by_kind.get(kind, []))

    def get(self, kind, name):
        """The one object of that kind and name; KeyError listing what exists otherwise."""
        for d in self._by_kind.get(kind, []):
            if d["metadata"]["name"] == name:
                return d
        have = [d["metadata"]["name"] for d in self._by_kind.get(kind, [])]
        raise KeyError(f"no {kind}/{name}; rendered {kind} objects: {have}")

    def find(self, kind, name):
        """Like get(), but None when absent."""
        try:
            return self.get(kind, name)
        except KeyError:
            return None

    def by_component(self, component):
        """Objects whose app.kubernetes.io/name label is the component's."""
        return [d for d in self.docs if _component(d) == component]

    def workloads(self):
        kinds = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
        return [d for d in self.docs if d["kind"] in kinds]


def pod_spec(obj):
    """The PodSpec inside a workload object (None for non-workloads)."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return obj["spec"]["template"]["spec"]
    return None


def containers(obj):
    spec = pod_spec(obj) or {}
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def ident(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"
