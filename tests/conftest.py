"""Shared fixtures. Tier markers are registered in pyproject.toml."""
import pytest

from harness import tools


# Module order. `make test` runs `-n 2 --dist loadfile --no-loadscope-reorder`: xdist hands out
# whole modules in the order collected. Its default (--loadscope-reorder) hands out the modules
# with the most tests first, which put the e2e and cluster modules - a few tests of minutes each,
# waiting on alert timers and the API server - at the end of the queue, where a worker that took
# one last set the wall time while the other had nothing left. Here the longest modules come
# first, then the rest of the e2e and cluster tiers, then conformance, then the many short unit
# modules, which fill in at the end (stable sort: each module keeps its own test order).
FIRST_MODULES = ("test_e2e_pipeline.py", "test_e2e_operator.py")   # the longest two (8 and 3+ min)
TIER_ORDER = ("test_e2e_", "test_cluster", "test_conformance_", "test_unit_")


def _module_rank(name):
    if name in FIRST_MODULES:
        return (0, FIRST_MODULES.index(name))
    return (1, next((i for i, p in enumerate(TIER_ORDER) if name.startswith(p)), len(TIER_ORDER)))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _module_rank(item.path.name))


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
