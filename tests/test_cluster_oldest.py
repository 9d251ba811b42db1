"""Cluster tier on the oldest Kubernetes minor the chart's kubeVersion admits (tools.versions'
kubernetes-oldest, a local control plane of its own): every profile installs and gets ready.
A file of its own so that it runs beside test_cluster_install.py (pytest -n 2 --dist loadfile)."""
import pytest

from harness import tools
from harness.cluster import DEPLOY_SCRIPT_PSS
from test_cluster_install import PROFILES, assert_ready, install

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("profile", list(PROFILES))
def test_oldest_kubernetes_installs_every_profile(oldest_cluster, profile):
    """The oldest minor kubeVersion admits: every profile installs and gets ready there too."""
    helm = tools.require("helm")
    c = oldest_cluster
    ns = c.new_namespace(f"oldest-{profile}", DEPLOY_SCRIPT_PSS)
    try:
        install(c, helm, "p5", ns, profile)
        assert_ready(c, ns)
    finally:
        c.helm(helm, "uninstall", "p5", "-n", ns, check=False)
        c.delete_namespace(ns)


def test_oldest_cluster_runs_the_oldest_pinned_version(oldest_cluster):
    from harness.controlplane import kubernetes_versions
    assert oldest_cluster.version() == kubernetes_versions()[-1]
