"""The cluster the cluster tier installs on: the one in KUBECONFIG when it answers, else the
local control plane (harness.controlplane: real API server, simulated nodes).

    with open_cluster() as c:
        c.simulated        # True on the local control plane: no container runs
        c.helm("install", ...), c.kubectl("get", ...), c.get("pods", "-n", ns)

Every namespace made through new_namespace() is deleted when the cluster closes.
"""
import contextlib
import json
import os
import subprocess
import uuid

from . import tools
from .controlplane import ControlPlane, kubernetes_versions, workloads_ready
from .polling import wait_until

__all__ = ["Cluster", "ControlPlane", "DEPLOY_SCRIPT_PSS", "kubernetes_versions", "open_cluster", "workloads_ready"]


class Cluster:
    def __init__(self, kubeconfig, simulated, controlplane=None, env=None, kubectl_bin=None):
        self.kubeconfig = str(kubeconfig)
        self.simulated = simulated
        self.cp = controlplane
        self._env = env or {**os.environ, "KUBECONFIG": self.kubeconfig}
        self.kubectl_bin = kubectl_bin or tools.require("kubectl")
        self.namespaces = []

    # -- commands
    def env(self, **extra):
        return {**self._env, **extra}

    def run(self, argv, check=True, timeout=600, input=None, env=None):
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
                              input=input, env=env or self.env())
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(str(a) for a in argv)} exited {proc.returncode}:\n"
                                 f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
        return proc

    def kubectl(self, *args, check=True, input=None, timeout=180):
        return self.run([self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args],
                        check=check, input=input, timeout=timeout)

    def helm(self, binary, *args, check=True, timeout=600):
        return self.run([binary, f"--kubeconfig={self.kubeconfig}", *args], check=check, timeout=timeout)

    def get(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args):
        return self.kubectl("get", *args, "-o", "name", check=False).returncode == 0

    def wait(self, check, timeout, what, every=0.5):
        if self.cp is not None:
            return self.cp.wait(check, timeout, what, every)
        return wait_until(check, timeout, what, every)

    def version(self):
        return json.loads(self.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]

    # -- namespaces
    def new_namespace(self, prefix, labels=None):
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"[:63]
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
        self.kubectl("create", "-f", "-", input=json.dumps(obj))
        self.namespaces.append(name)
        return name

    def delete_namespace(self, name):
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def close(self):
        for ns in list(self.namespaces):
            self.delete_namespace(ns)


# Pod Security labels of the stack's namespace, as deploy-monitoring.sh sets them.
DEPLOY_SCRIPT_PSS = {"pod-security.kubernetes.io/enforce": "privileged",
                     "pod-security.kubernetes.io/warn": "restricted",
                     "pod-security.kubernetes.io/audit": "restricted"}


def kubeconfig_cluster_reachable():
    """True when KUBECONFIG (or ~/.kube/config) names a cluster that answers in 5 s."""
    kubectl = tools.find("kubectl")
    if not kubectl:
        return False
    if not os.environ.get("KUBECONFIG") and not os.path.exists(os.path.expanduser("~/.kube/config")):
        return False
    proc = subprocess.run([kubectl, "version", "--request-timeout=5s", "-o", "json"],
                          capture_output=True, text=True, timeout=30)
    return proc.returncode == 0 and "serverVersion" in proc.stdout


@contextlib.contextmanager
def open_cluster(version=None, workdir=None):
    """The KUBECONFIG cluster when reachable (and no version asked), else a local control plane."""
    if version is None and kubeconfig_cluster_reachable():
        kc = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        c = Cluster(kc, simulated=False)
        try:
            yield c
        finally:
            c.close()
        return
    cp = ControlPlane(workdir=workdir, version=version or kubernetes_versions()[0]).start()
    try:
        c = Cluster(cp.kubeconfig, simulated=True, controlplane=cp, env=cp.env(), kubectl_bin=cp.kubectl_bin)
        yield c
    finally:
        cp.stop()
