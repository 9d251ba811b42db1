"""Cluster tier of the chart-repository consumer tests (shared parts: harness/release_consumer.py):
helm 3 and helm 4 install and upgrade the published, verified chart on the cluster tier's
cluster (the local control plane unless KUBECONFIG reaches one)."""
import json
import re
import shutil

import pytest

from harness import tools
from harness.chartrepo import RepoServer, offline_env
from harness.cluster import DEPLOY_SCRIPT_PSS
from harness.release_consumer import (
    CURRENT, INSTALL, NAME, assert_deployed, consumer, gpg_key, previous_version, published, run,
    tamper_package)


# ------------------------------------------------------------------------------ installs (cluster)
@pytest.fixture
def ns(cluster, request):
    name = cluster.new_namespace(re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-"),
                                 DEPLOY_SCRIPT_PSS)
    yield name
    helm = tools.require("helm")
    for rel in cluster.helm(helm, "list", "-n", name, "-q", check=False).stdout.split():
        cluster.helm(helm, "uninstall", rel, "-n", name, "--timeout", "2m", check=False)
    cluster.delete_namespace(name)


@pytest.mark.cluster
@pytest.mark.parametrize("helm_name", ["helm", "helm4"])
def test_install_from_the_chart_repository_verified(published, gpg_key, cluster, ns, tmp_path, helm_name):
    """helm repo add, helm search repo (both versions), helm install --version X --verify."""
    def helm(*a, **kw):
        return consumer(tmp_path, *a, helm_name=helm_name, cluster=cluster, **kw)
    helm("repo", "add", "p5", published.url)
    found = json.loads(helm("search", "repo", f"p5/{NAME}", "--versions", "-o", "json").stdout)
    assert sorted(r["version"] for r in found) == sorted([previous_version(), CURRENT]), found
    out = helm("install", "p5", f"p5/{NAME}", "--version", CURRENT, "--verify", "--keyring", gpg_key.pubring,
               "-n", ns, *INSTALL)
    assert_deployed(cluster, ns, CURRENT, helm_name)
    assert "STATUS: deployed" in out.stdout, out.stdout


@pytest.mark.cluster
@pytest.mark.parametrize("helm_name", ["helm", "helm4"])
def test_tampered_package_fails_verification_and_installs_nothing(published, gpg_key, cluster, ns, tmp_path, helm_name):
    """A server that swaps the package (and rewrites index.yaml to match) keeps the genuine
    .prov: `helm install --verify` refuses and no release exists."""
    evil = tmp_path / "evil-repo"
    shutil.copytree(published.dir, evil)
    genuine = evil / f"{NAME}-{CURRENT}.tgz"
    shutil.copy2(tamper_package(genuine, tmp_path), genuine)
    run([tools.require("helm"), "repo", "index", evil], env=offline_env())
    with RepoServer(evil, log_dir=tmp_path) as server:
        def helm(*a, **kw):
            return consumer(tmp_path, *a, helm_name=helm_name, cluster=cluster, **kw)
        helm("repo", "add", "evil", server.url)
        proc = helm("install", "p5", f"evil/{NAME}", "--version", CURRENT, "--verify", "--keyring",
                    gpg_key.pubring, "-n", ns, *INSTALL, check=False)
    assert proc.returncode != 0, f"a tampered package installed:\n{proc.stdout}"
    assert f"sha256 sum does not match for {NAME}-{CURRENT}.tgz" in proc.stderr, proc.stderr
    assert not cluster.helm(tools.require("helm"), "list", "-n", ns, "-q").stdout.strip()


@pytest.mark.cluster
@pytest.mark.parametrize("helm_name", ["helm", "helm4"])
def test_install_from_the_oci_registry_verified(published, gpg_key, cluster, ns, tmp_path, helm_name):
    """helm install oci://127.0.0.1:PORT/charts/phase5-monitoring --version X --verify."""
    out = consumer(tmp_path, "install", "p5", published.oci, "--version", CURRENT, "--plain-http",
                   "--verify", "--keyring", gpg_key.pubring, "-n", ns, *INSTALL, helm_name=helm_name, cluster=cluster)
    assert "STATUS: deployed" in out.stdout, out.stdout
    assert_deployed(cluster, ns, CURRENT, helm_name)


@pytest.mark.cluster
def test_upgrade_from_the_previous_published_version(published, gpg_key, cluster, ns, tmp_path):
    """A user on the previous release upgrades to the new one from the repository, verified."""
    def helm(*a, **kw):
        return consumer(tmp_path, *a, cluster=cluster, **kw)
    helm("repo", "add", "p5", published.url)
    verify = ("--verify", "--keyring", gpg_key.pubring)
    helm("install", "p5", f"p5/{NAME}", "--version", previous_version(), *verify, "-n", ns, *INSTALL)
    assert_deployed(cluster, ns, previous_version())
    helm("upgrade", "p5", f"p5/{NAME}", "--version", CURRENT, *verify, "-n", ns, *INSTALL)
    assert_deployed(cluster, ns, CURRENT)


@pytest.mark.cluster
def test_upgrade_with_the_defaults_follows_the_readme(published, gpg_key, cluster, ns, tmp_path):
    """With the chart's defaults (persistence on) a consumer has no deploy script: where the API
    server refuses the upgrade (0.1.0 and 0.2.0 labelled Loki's claim template), the README's
    by-hand step (delete the StatefulSet with --cascade=orphan) lets it through, keeping the PVCs."""
    def helm(*a, **kw):
        return consumer(tmp_path, *a, cluster=cluster, **kw)
    helm("repo", "add", "p5", published.url)
    verify, wait = ("--verify", "--keyring", gpg_key.pubring), ("--wait", "--timeout", "5m")
    helm("install", "p5", f"p5/{NAME}", "--version", previous_version(), *verify, "-n", ns, *wait)
    pvcs = {p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.get("pvc", "-n", ns)["items"]}
    assert pvcs, "the defaults keep data on PVCs"
    proc = helm("upgrade", "p5", f"p5/{NAME}", "--version", CURRENT, *verify, "-n", ns, *wait, check=False)
    if proc.returncode != 0:
        m = re.search(r'cannot patch "(p5-[a-z-]+)" with kind StatefulSet: .*volumeClaimTemplates', proc.stderr)
        assert m, f"the upgrade failed for another reason than a claim template:\n{proc.stderr}"
        assert m.group(1) == "p5-loki", f"README's Upgrading names only Loki's claim template: {proc.stderr}"
        cluster.kubectl("-n", ns, "delete", "statefulset", m.group(1), "--cascade=orphan")
        helm("upgrade", "p5", f"p5/{NAME}", "--version", CURRENT, *verify, "-n", ns, *wait)
    assert_deployed(cluster, ns, CURRENT)
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.get("pvc", "-n", ns)["items"]}
    assert {n: after.get(n) for n in pvcs} == pvcs, f"PVCs replaced or lost: {pvcs} -> {after}"
