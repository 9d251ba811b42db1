"""An index over rendered Kubernetes objects (by kind, by name, by component) and the readers
of their fields every test and script shares: component(), pod_spec(), containers(), quantity()."""
import collections
import re


def component(obj, default=""):
    """The object's component: its app.kubernetes.io/name label (`default` when it has none)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/name", default)


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

    def by_component(self, name):
        """Objects whose app.kubernetes.io/name label is `name`."""
        return [d for d in self.docs if component(d) == name]

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


# Kubernetes quantity suffixes: binary (Ki..Ei), decimal (n..E); an exponent (1e3) too.
_SUFFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
             "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([A-Za-z]*|[eE][+-]?[0-9]+)")


def quantity(q):
    """A Kubernetes quantity ("500m", "512Mi", "8", "1e3", 2) as a number (cores or bytes);
    ValueError naming the value for anything else."""
    m = _QUANTITY.fullmatch(str(q).strip())
    if m and m.group(2) in _SUFFIXES:
        return float(m.group(1)) * _SUFFIXES[m.group(2)]
    if m and re.fullmatch(r"[eE][+-]?[0-9]+", m.group(2)):
        return float(m.group(1) + m.group(2))
    raise ValueError(f"not a Kubernetes quantity: {q!r}")
