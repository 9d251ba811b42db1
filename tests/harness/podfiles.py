"""A rendered pod's container laid out as files, as the kubelet would mount them: each volume
(ConfigMap, Secret, projected; emptyDir and claims as empty directories) under
<root>/<mountPath>, hostPath mounts as this machine's own directories, the ServiceAccount token
where the kubelet puts it, the container's env; absolute paths re-rooted into that tree."""
import base64
from pathlib import Path

from .manifests import component as component_of
from .manifests import pod_spec


def find_workload(manifests, component):
    for kind in ("StatefulSet", "Deployment", "DaemonSet"):
        for obj in manifests.of_kind(kind):
            if component_of(obj) == component:
                return obj
    raise LookupError(f"the render has no StatefulSet/Deployment of component {component!r}; "
                      f"workloads: {[o['kind'] + '/' + o['metadata']['name'] for o in manifests.workloads()]}")


def _volume_files(manifests, volume):
    """{relative path: bytes} a configMap/secret/projected volume would show, or None."""
    def from_source(kind, name, items):
        obj = manifests.get(kind, name)
        files = {}
        for k, v in (obj.get("data") or {}).items():
            files[k] = base64.b64decode(v) if kind == "Secret" else str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            files[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            files[k] = str(v).encode()
        if items:
            files = {it.get("path", it["key"]): files[it["key"]] for it in items}
        return files
    if "configMap" in volume:
        return from_source("ConfigMap", volume["configMap"]["name"], volume["configMap"].get("items"))
    if "secret" in volume:
        return from_source("Secret", volume["secret"]["secretName"], volume["secret"].get("items"))
    if "projected" in volume:
        files = {}
        for src in volume["projected"].get("sources", []):
            if "configMap" in src:
                files.update(from_source("ConfigMap", src["configMap"]["name"], src["configMap"].get("items")))
            elif "secret" in src:
                files.update(from_source("Secret", src["secret"]["name"], src["secret"].get("items")))
        return files
    return None


class PodFiles:
    """A rendered pod's container, its mounts laid out under `root`."""

    def __init__(self, manifests, component, container, root, obj=None):
        """`obj`: a rendered Pod or workload to lay out instead of the component's workload
        (the `helm test` pods)."""
        self.obj = obj or find_workload(manifests, component)
        spec = pod_spec(self.obj)
        cont = [c for c in spec["containers"] if c["name"] == container]
        if not cont:
            raise LookupError(f"{self.obj['kind']}/{self.obj['metadata']['name']}: no container {container!r}")
        self.container = cont[0]
        self.root = Path(root)
        self.spec = spec
        self.mounts = []        # mountPaths, longest first
        self.host_paths = {}    # mountPath -> hostPath: the node's own directory (this machine's)
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for m in self.container.get("volumeMounts") or []:
            mp = m["mountPath"]
            self.mounts.append(mp)
            dest = self.root / mp.lstrip("/")
            vol = volumes.get(m["name"])
            if vol and "hostPath" in vol:
                self.host_paths[mp] = vol["hostPath"]["path"]
                continue
            files = _volume_files(manifests, vol) if vol else None
            if files is None:       # emptyDir, PVC (volumeClaimTemplate): an empty directory
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if m.get("subPath"):
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(files[m["subPath"]])
                continue
            dest.mkdir(parents=True, exist_ok=True)
            for rel, data in files.items():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                (dest / rel).write_bytes(data)
        self.mounts.sort(key=len, reverse=True)

    @property
    def args(self):
        return list(self.container.get("args") or [])

    def automount_service_account(self, token, ca_pem, namespace):
        """Lay out the ServiceAccount token, CA and namespace where the kubelet mounts them
        (/var/run/secrets/kubernetes.io/serviceaccount), unless the pod opts out. Returns the
        local directory, or None when the pod does not mount a token."""
        if self.spec.get("automountServiceAccountToken") is False:
            return None
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        d = self.root / sa.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "token").write_text(token)
        (d / "ca.crt").write_bytes(ca_pem)
        (d / "namespace").write_text(namespace)
        self.mounts.append(sa)
        self.mounts.sort(key=len, reverse=True)
        return d

    def env(self, pod=None):
        """The container's env as the kubelet sets it for pod <name>-0, or for `pod` when given
        (literal values and the downward API's fields, from `pod` as the API server holds it)."""
        md = self.obj["metadata"]
        st, spec = (pod or {}).get("status", {}), (pod or {}).get("spec", {})
        name = ((pod or {}).get("metadata") or {}).get("name") or f"{md['name']}-0"
        fields = {"metadata.name": name, "metadata.namespace": md.get("namespace", ""),
                  "status.podIP": st.get("podIP", "127.0.0.1"), "status.hostIP": st.get("hostIP", "127.0.0.1"),
                  "spec.nodeName": spec.get("nodeName", "")}
        out = {}
        for e in self.container.get("env") or []:
            if "value" in e:
                out[e["name"]] = str(e["value"])
            elif (e.get("valueFrom") or {}).get("fieldRef"):
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                if path in fields:
                    out[e["name"]] = fields[path]
        return out

    def reroot(self, path):
        """An absolute path inside a mount -> the local copy (a hostPath mount -> this machine's
        own directory, as on a node); other strings unchanged."""
        if isinstance(path, str) and path.startswith("/"):
            for mp in self.mounts:
                if path == mp or path.startswith(mp.rstrip("/") + "/"):
                    if mp in self.host_paths:
                        rest = path[len(mp):].lstrip("/")
                        return str(Path(self.host_paths[mp]) / rest) if rest else self.host_paths[mp]
                    return str(self.root / path.lstrip("/"))
        return path

    def reroot_tree(self, node):
        if isinstance(node, dict):
            return {k: self.reroot_tree(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.reroot_tree(v) for v in node]
        return self.reroot(node)

    def local(self, path):
        return Path(self.reroot(path))


def flag(args, name):
    """The value of `--name=value` in a container's args (None when absent)."""
    for a in args:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None
