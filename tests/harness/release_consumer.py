"""What the chart-repository consumer tests share (tests/test_unit_release.py,
test_e2e_release.py, test_cluster_release.py): the chart as users get it, published by
scripts/release.py.

A consumer never clones this repository: they `helm repo add` a classic repository or install
from `oci://`, pin a version, verify it and read `helm show`. The release script publishes the
previous released version (ci/releases/, re-signed from an extracted copy) and the work tree's
version into a classic repository served on 127.0.0.1 and a local OCI registry (distribution
v3, bin/registry), signed with a throwaway GPG key (Helm provenance) and a throwaway cosign key
pair. Every helm and cosign command runs with proxies pointing at a closed local port, so
anything that tried to leave the machine would fail.

The fixtures (gpg_key, cosign_keys, work_copy, published) are imported by the test modules,
where pytest finds them; module-scoped ones are made once per module that uses them.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest
import yaml

from . import paths, tools
from .chartrepo import Registry, RepoServer, offline_env
from .cluster import workloads_ready

ROOT = paths.ROOT
RELEASE_SCRIPT = ROOT / "scripts" / "release.py"
NAME = "phase5-monitoring"
CURRENT = str(yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())["version"])
KEY_NAME = "Phase5 Release Test"
COSIGN_PASSWORD = "throwaway-test-password"
DEV_VALUES = paths.PROFILES_DIR / "dev.yaml"
# The package is a few hundred files of text: a budget that catches build output or tests
# slipping in (a .tgz inside, the harness, node_modules) long before a user notices. 0.6.0 is
# 284 KB (the Thanos Store Gateway and Compactor, Jaeger SPM, Loki's ruler, Grafana sign-in and
# the dashboards' variables; the schemas are the largest files): 384 KiB still fails on a
# packaged copy of the chart inside itself.
PACKAGE_BUDGET = 384 * 1024
# What a chart needs, relative to the umbrella and to each subchart (charts/<name>/).
CHART_FILES = ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "LICENSE",
               ".helmignore", "templates/*", "files/*")


# ------------------------------------------------------------------------------ helpers
def previous_package():
    def version(p):
        return tuple(int(x) for x in re.search(r"-(\d+)\.(\d+)\.(\d+)\.tgz$", p.name).groups())
    tgzs = sorted((ROOT / "ci" / "releases").glob(f"{NAME}-*.tgz"), key=version)
    assert tgzs, "no released chart in ci/releases/"
    return tgzs[-1]


def previous_version():
    return re.search(r"-(\d+\.\d+\.\d+)\.tgz$", previous_package().name).group(1)


def run(argv, env=None, cwd=None, check=True, timeout=300, input=None):
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(str(a) for a in argv)} exited {proc.returncode}:\n"
                             f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
    return proc


GIT_ID = {"GIT_AUTHOR_NAME": "release test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
          "GIT_COMMITTER_NAME": "release test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}


def git(repo, *args):
    return run(["git", "-C", repo, *args], env={**os.environ, **GIT_ID}).stdout


def commit_all(repo, message):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)


def copy_work_tree(dest):
    """The work tree as it is (tracked and untracked, not ignored files) in a new git repository,
    committed: what a maintainer releases from."""
    listed = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git(dest, "init", "-q")
    commit_all(dest, "work tree")
    return dest


def repo_from_package(tgz, dest):
    """A git repository holding an extracted released package under charts/: the previous version."""
    (dest / "charts").mkdir(parents=True)
    with tarfile.open(tgz) as t:
        t.extractall(dest / "charts", filter="data")
    git(dest, "init", "-q")
    commit_all(dest, f"release {tgz.name}")
    return dest


def helm_homes(base):
    """A consumer's own Helm configuration, cache and data (no repository of the user's)."""
    base = Path(base)
    return {"HELM_CONFIG_HOME": str(base / "config"), "HELM_CACHE_HOME": str(base / "cache"),
            "HELM_DATA_HOME": str(base / "data")}


def tamper_package(tgz, dest):
    """The same chart name and version, one value changed: what a compromised server would serve."""
    work = dest / "tamper-src"
    with tarfile.open(tgz) as t:
        t.extractall(work, filter="data")
    values = work / NAME / "values.yaml"
    values.write_text(values.read_text() + "\n# tampered\nglobal: {imageRegistry: evil.example.invalid}\n")
    out = dest / "tampered"
    out.mkdir(parents=True, exist_ok=True)
    run([tools.require("helm"), "package", work / NAME, "-d", out])
    tampered = out / tgz.name
    assert tampered.exists() and tampered.read_bytes() != tgz.read_bytes()
    return tampered


# ------------------------------------------------------------------------------ keys
@pytest.fixture(scope="module")
def gpg_key(tmp_path_factory):
    """A throwaway GPG key (ed25519, one day) in its own GNUPGHOME; the legacy keyrings Helm
    reads: secring.gpg (signing) and pubring.gpg (what a consumer verifies with)."""
    gpg = tools.require("gpg")
    base = tmp_path_factory.mktemp("gpg")
    home = base / "gnupghome"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        run([gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
             f"{KEY_NAME} <release-test@example.invalid>", "ed25519", "sign", "1d"], env=env)
        secring, pubring = base / "secring.gpg", base / "pubring.gpg"
        secring.write_bytes(subprocess.run([gpg, "--batch", "--export-secret-keys"], env=env,
                                           capture_output=True, check=True).stdout)
        pubring.write_bytes(subprocess.run([gpg, "--batch", "--export"], env=env,
                                           capture_output=True, check=True).stdout)
        fpr = re.search(r"^fpr:+([0-9A-F]{40}):", run([gpg, "--with-colons", "--list-keys"], env=env).stdout, re.M)
        yield types.SimpleNamespace(home=home, secring=secring, pubring=pubring, fingerprint=fpr.group(1))
    finally:
        # gpg started an agent for the key generation: it must not outlive the tests.
        gpgconf = shutil.which("gpgconf")
        if gpgconf:
            subprocess.run([gpgconf, "--kill", "all"], env=env, capture_output=True)


@pytest.fixture(scope="module")
def cosign_keys(tmp_path_factory):
    """A throwaway cosign key pair (cosign.key, password-protected, and cosign.pub)."""
    cosign = tools.require("cosign")
    base = tmp_path_factory.mktemp("cosign")
    run([cosign, "generate-key-pair"], cwd=base, env=offline_env(COSIGN_PASSWORD=COSIGN_PASSWORD))
    return types.SimpleNamespace(key=base / "cosign.key", pub=base / "cosign.pub")


def release_env(gpg_key, workdir, **extra):
    env = offline_env(GNUPGHOME=str(gpg_key.home), COSIGN_PASSWORD=COSIGN_PASSWORD, HELM=tools.require("helm"),
                      **helm_homes(Path(workdir) / "release-helm"))
    for k in ("RELEASE_GPG_KEY", "RELEASE_GPG_KEYRING", "RELEASE_GPG_PASSPHRASE_FILE", "RELEASE_REPO_DIR",
              "RELEASE_REPO_URL", "RELEASE_OCI", "COSIGN_KEY"):
        env.pop(k, None)
    env.update(extra)
    return env


def release(repo, gpg_key, workdir, *args, cosign_keys=None, sign=True, check=True, env=None):
    """scripts/release.py (the work tree's) on the chart of `repo`."""
    argv = [sys.executable, RELEASE_SCRIPT, "--chart", Path(repo) / "charts" / NAME,
            "--dest", Path(workdir) / "dest"]
    if sign:
        argv += ["--gpg-key", KEY_NAME, "--gpg-keyring", gpg_key.secring]
    if cosign_keys is not None:
        argv += ["--cosign-key", cosign_keys.key]
    extra = {"COSIGN": tools.require("cosign")} if cosign_keys is not None else {}
    return run(argv + list(args), env=env or release_env(gpg_key, workdir, **extra), check=check)


def refused(proc, *phrases):
    text = proc.stderr + proc.stdout
    assert proc.returncode != 0, f"the release was not refused:\n{text}"
    assert "REFUSED" in text, text
    for p in phrases:
        assert p in text, f"{p!r} not in the refusal:\n{text}"



@pytest.fixture
def work_copy(tmp_path):
    return copy_work_tree(tmp_path / "src")


@pytest.fixture(scope="module")
def published(tmp_path_factory, gpg_key, cosign_keys):
    """The previous and the current version released into a classic repository served on
    127.0.0.1 and into a local OCI registry; both servers stop at the end, also on failure."""
    base = tmp_path_factory.mktemp("published")
    registry, server = Registry(base / "registry"), RepoServer(base / "repo", log_dir=base)
    try:
        registry.start()
        server.start()
        publish = ("--repo-dir", server.dir, "--oci", registry.oci, "--plain-http")
        release(repo_from_package(previous_package(), base / "prev"), gpg_key, base / "r-prev", *publish,
                cosign_keys=cosign_keys)
        release(copy_work_tree(base / "src"), gpg_key, base / "r-current", *publish, cosign_keys=cosign_keys)
        yield types.SimpleNamespace(registry=registry, server=server, url=server.url, dir=server.dir,
                                    oci=f"{registry.oci}/{NAME}", base=base)
    finally:
        server.stop()
        registry.stop()


def consumer(tmp_path, *argv, helm_name="helm", env=None, check=True, cluster=None):
    """A helm command as a consumer runs it: own Helm homes, offline, the cluster's kubeconfig."""
    helm = tools.require(helm_name)
    base = env if env is not None else (cluster.env() if cluster else os.environ)
    e = offline_env(base, **helm_homes(tmp_path / f"consumer-{helm_name}"))
    kube = [f"--kubeconfig={cluster.kubeconfig}"] if cluster else []
    return run([helm, *kube, *argv], env=e, check=check)


PROV_LAYER = "application/vnd.cncf.helm.chart.provenance.v1.prov"


def assert_deployed(cluster, ns, version, helm_name="helm"):
    (rel,) = json.loads(cluster.helm(tools.require(helm_name), "list", "-n", ns, "-o", "json").stdout)
    assert rel["chart"] == f"{NAME}-{version}" and rel["status"] == "deployed", rel
    bad = []

    def ready():
        bad[:] = workloads_ready(cluster, ns)
        return not bad
    try:
        cluster.wait(ready, 180, f"workloads in {ns} ready")
    except TimeoutError:
        pytest.fail(f"not ready in {ns}: {bad}")


INSTALL = ("-f", DEV_VALUES, "--wait", "--timeout", "5m")
