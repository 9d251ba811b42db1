"""Shared fixtures. Tier markers are registered in pyproject.toml."""
import pytest

from harness import tools


def pytest_report_header(config):
    found = {name: tools.find(name) or "MISSING" for name in tools.TOOLS}
    lines = ["tools: " + ", ".join(f"{k}={v}" for k, v in found.items())]
    if tools.in_ci():
        lines.append("CI=true: a missing tool fails its tests instead of skipping them")
    return lines


@pytest.fixture(scope="session")
def helm():
    return tools.require("helm")



@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The cluster tier's cluster: KUBECONFIG's when it answers, else the local control plane
    at the newest pinned Kubernetes (started once per session, stopped at the end)."""
    from harness.cluster import open_cluster
    with open_cluster(workdir=tmp_path_factory.mktemp("controlplane")) as c:
        yield c


@pytest.fixture(scope="session")
def oldest_cluster(tmp_path_factory):
    """A local control plane at the oldest Kubernetes minor the chart's kubeVersion admits."""
    from harness.cluster import kubernetes_versions, open_cluster
    with open_cluster(version=kubernetes_versions()[-1], workdir=tmp_path_factory.mktemp("controlplane-oldest")) as c:
        yield c


@pytest.fixture(scope="session")
def local_cluster(cluster, tmp_path_factory):
    """The local control plane at the newest pinned Kubernetes: `cluster` itself when that is
    local, else one started for the checks that are about the local control plane or need its
    three nodes (so they run, not skip, beside a KUBECONFIG cluster)."""
    if cluster.simulated:
        yield cluster
        return
    from harness.cluster import kubernetes_versions, open_cluster
    with open_cluster(version=kubernetes_versions()[0], workdir=tmp_path_factory.mktemp("controlplane-local")) as c:
        yield c
