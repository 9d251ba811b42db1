"""Chart repository consumers: the chart as users get it, published by scripts/release.py.

A consumer never clones this repository: they `helm repo add` a classic repository or install
from `oci://`, pin a version, verify it and read `helm show`. Here the release script publishes
the previous released version (ci/releases/, re-signed from an extracted copy) and the work
tree's version into a classic repository served on 127.0.0.1 and a local OCI registry
(distribution v3, bin/registry), signed with a throwaway GPG key (Helm provenance) and a
throwaway cosign key pair; then helm 3 and helm 4 install from there on the cluster tier's
cluster (the local control plane unless KUBECONFIG reaches one).

Tiers: the package contents and the release script's refusals need only git, helm and gpg
(unit); the registry and cosign checks run real binaries on 127.0.0.1 (e2e); installs and
upgrades need the API server (cluster). Every helm and cosign command runs with proxies
pointing at a closed local port, so anything that tried to leave the machine would fail.
"""
import fnmatch
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

from harness import paths, tools
from harness.chartrepo import Registry, RepoServer, offline_env
from harness.cluster import DEPLOY_SCRIPT_PSS, workloads_ready

ROOT = paths.ROOT
RELEASE_SCRIPT = ROOT / "scripts" / "release.py"
NAME = "phase5-monitoring"
CURRENT = str(yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())["version"])
KEY_NAME = "Phase5 Release Test"
COSIGN_PASSWORD = "throwaway-test-password"
DEV_VALUES = paths.PROFILES_DIR / "dev.yaml"
# The package is a few hundred files of text: a budget that catches build output or tests
# slipping in (a .tgz inside, the harness, node_modules) long before a user notices.
PACKAGE_BUDGET = 256 * 1024
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


# ------------------------------------------------------------------------------ package (unit)
@pytest.mark.unit
def test_package_holds_only_what_a_chart_needs(tmp_path, record_property):
    """helm package of the work tree: every file is part of a chart (no tests, CI values,
    build output, nested packages), every subchart is inside, and the size is recorded."""
    helm = tools.require("helm")
    out = run([helm, "package", paths.UMBRELLA, "-d", tmp_path]).stdout
    tgz = Path(out.strip().rsplit(": ", 1)[-1])
    with tarfile.open(tgz) as t:
        names = [m.name for m in t.getmembers() if m.isfile()]
    subcharts = {p.name for p in paths.subcharts()}
    stray = []
    for name in names:
        rel = name.split("/", 1)[1]
        m = re.match(r"^charts/([^/]+)/(.*)$", rel)
        if m and m.group(1) in subcharts:
            rel = m.group(2)
        if not any(fnmatch.fnmatch(rel, pattern) for pattern in CHART_FILES):
            stray.append(name)
    assert not stray, f"the package holds files a chart does not need (.helmignore): {stray}"
    packaged = {n.split("/")[2] for n in names if n.split("/")[1] == "charts"}
    assert packaged == subcharts, f"subcharts packaged {sorted(packaged)}, in the work tree {sorted(subcharts)}"
    size = tgz.stat().st_size
    record_property("package_size_bytes", size)
    print(f"{tgz.name}: {size} bytes, {len(names)} files")
    assert size < PACKAGE_BUDGET, f"{tgz.name} is {size} bytes (budget {PACKAGE_BUDGET}): what grew?"


@pytest.mark.unit
def test_chart_yaml_says_what_changed_in_this_version():
    """Artifact Hub shows artifacthub.io/changes per version: present, well-formed kinds."""
    chart = yaml.safe_load((paths.UMBRELLA / "Chart.yaml").read_text())
    changes = yaml.safe_load(chart["annotations"].get("artifacthub.io/changes", "") or "[]")
    assert changes, "Chart.yaml has no artifacthub.io/changes for this version"
    kinds = {"added", "changed", "deprecated", "removed", "fixed", "security"}
    for c in changes:
        assert c.get("kind") in kinds and c.get("description"), f"bad artifacthub.io/changes entry: {c}"


# ------------------------------------------------------------------------------ refusals (unit)
@pytest.fixture
def work_copy(tmp_path):
    return copy_work_tree(tmp_path / "src")


@pytest.mark.unit
def test_release_publishes_signed_and_keeps_older_versions_in_the_index(gpg_key, tmp_path):
    """The previous version, then the work tree's, into one repository: both in index.yaml,
    each with its package and a .prov that verifies with the public key."""
    helm, repo_dir = tools.require("helm"), tmp_path / "repo"
    prev = repo_from_package(previous_package(), tmp_path / "prev")
    release(prev, gpg_key, tmp_path / "r1", "--repo-dir", repo_dir)
    release(copy_work_tree(tmp_path / "src"), gpg_key, tmp_path / "r2", "--repo-dir", repo_dir)
    index = yaml.safe_load((repo_dir / "index.yaml").read_text())
    versions = sorted(e["version"] for e in index["entries"][NAME])
    assert versions == sorted([previous_version(), CURRENT]), versions
    for v in versions:
        tgz = repo_dir / f"{NAME}-{v}.tgz"
        assert (repo_dir / f"{tgz.name}.prov").exists(), f"no provenance for {v}"
        out = run([helm, "verify", tgz, "--keyring", gpg_key.pubring]).stdout
        assert gpg_key.fingerprint in out, out


@pytest.mark.unit
def test_release_refuses_a_dirty_work_tree_naming_the_files(gpg_key, work_copy, tmp_path):
    (work_copy / "charts" / NAME / "values.yaml").write_text("# changed\n", encoding="utf-8")
    (work_copy / "notes.txt").write_text("untracked\n")
    repo_dir = tmp_path / "repo"
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", repo_dir, check=False)
    refused(proc, "dirty", f"charts/{NAME}/values.yaml", "notes.txt")
    assert not repo_dir.exists(), "a refused release published something"


@pytest.mark.unit
def test_release_refuses_a_version_already_in_the_index(gpg_key, work_copy, tmp_path):
    repo_dir = tmp_path / "repo"
    release(work_copy, gpg_key, tmp_path / "first", "--repo-dir", repo_dir)
    before = (repo_dir / "index.yaml").read_bytes()
    proc = release(work_copy, gpg_key, tmp_path / "second", "--repo-dir", repo_dir, check=False)
    refused(proc, f"{NAME} {CURRENT} already exists in {repo_dir / 'index.yaml'}")
    assert (repo_dir / "index.yaml").read_bytes() == before, "the refused release changed index.yaml"


@pytest.mark.unit
def test_release_refuses_a_version_older_than_the_published_one(gpg_key, work_copy, tmp_path):
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    (repo_dir / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": {NAME: [
        {"name": NAME, "version": "99.0.0", "urls": [f"{NAME}-99.0.0.tgz"]}]}}))
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", repo_dir, check=False)
    refused(proc, "version not bumped", "99.0.0", CURRENT)


@pytest.mark.unit
def test_release_refuses_a_chart_changed_since_its_version_was_tagged(gpg_key, work_copy, tmp_path):
    git(work_copy, "tag", f"v{CURRENT}")
    notes = work_copy / "charts" / NAME / "templates" / "NOTES.txt"
    notes.write_text(notes.read_text() + "\nchanged after the tag\n")
    commit_all(work_copy, "change the chart without a bump")
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", check=False)
    refused(proc, "version not bumped", f"since tag v{CURRENT}", "templates/NOTES.txt")


@pytest.mark.unit
def test_release_refuses_without_its_keys(gpg_key, work_copy, tmp_path):
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", sign=False, check=False)
    refused(proc, "--gpg-key", "--gpg-keyring")
    proc = release(work_copy, gpg_key, tmp_path, "--oci", "oci://127.0.0.1:1/charts", "--plain-http", check=False)
    refused(proc, "--cosign-key")
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", "--gpg-keyring",
                   tmp_path / "missing.gpg", check=False)
    refused(proc, "missing.gpg: no such file")
    assert not (tmp_path / "repo").exists()


@pytest.mark.unit
def test_release_signs_only_with_the_key_chart_yaml_names(gpg_key, work_copy, tmp_path):
    """artifacthub.io/signKey, once set, is the only key a release may be signed with."""
    chart_yaml = work_copy / "charts" / NAME / "Chart.yaml"
    original = chart_yaml.read_text()

    def with_fingerprint(fpr):
        text = original.replace("annotations:\n", "annotations:\n  artifacthub.io/signKey: |\n"
                                f"    fingerprint: {fpr}\n    url: https://example.invalid/pgp.asc\n", 1)
        chart_yaml.write_text(text)
        commit_all(work_copy, f"signKey {fpr}")

    proc = release(work_copy, gpg_key, tmp_path / "a", "--repo-dir", tmp_path / "repo", "--require-sign-key",
                   check=False)
    refused(proc, "no artifacthub.io/signKey", f"fingerprint: {gpg_key.fingerprint}")
    with_fingerprint("0" * 40)
    proc = release(work_copy, gpg_key, tmp_path / "a", "--repo-dir", tmp_path / "repo", check=False)
    refused(proc, "0" * 40, gpg_key.fingerprint)
    with_fingerprint(gpg_key.fingerprint)
    release(work_copy, gpg_key, tmp_path / "b", "--repo-dir", tmp_path / "repo", "--require-sign-key")


@pytest.mark.unit
def test_release_refuses_a_tag_that_is_not_the_chart_version(gpg_key, work_copy, tmp_path):
    """The release workflow passes its tag: v9.9.9 on a chart that says otherwise is refused."""
    proc = release(work_copy, gpg_key, tmp_path, "--repo-dir", tmp_path / "repo", "--expect-version", "v9.9.9",
                   check=False)
    refused(proc, f"Chart.yaml says {CURRENT}", "v9.9.9")


# ------------------------------------------------------------------------------ published (e2e)
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


@pytest.mark.e2e
def test_registry_holds_both_versions_with_provenance(published):
    """Both versions are tags (beside cosign's sha256-<digest> signature tags), and helm push
    took each .prov along as a layer."""
    versions = [t for t in published.registry.tags(NAME) if not t.startswith("sha256-")]
    assert sorted(versions) == sorted([previous_version(), CURRENT])
    for v in versions:
        layers = [layer["mediaType"] for layer in published.registry.manifest(NAME, v)["layers"]]
        assert PROV_LAYER in layers, f"{NAME}:{v} has no provenance layer: {layers}"


@pytest.mark.e2e
@pytest.mark.parametrize("what", ["chart", "values", "readme"])
def test_helm_show_from_both_repositories_matches_the_work_tree(published, tmp_path, what):
    want = consumer(tmp_path, "show", what, paths.UMBRELLA).stdout
    consumer(tmp_path, "repo", "add", "p5", published.url)
    classic = consumer(tmp_path, "show", what, "p5/" + NAME, "--version", CURRENT).stdout
    oci = consumer(tmp_path, "show", what, published.oci, "--version", CURRENT, "--plain-http").stdout
    assert classic == want, f"helm show {what} from the chart repository differs from the work tree's"
    assert oci == want, f"helm show {what} from the OCI registry differs from the work tree's"


@pytest.mark.e2e
@pytest.mark.parametrize("helm_name", ["helm", "helm4"])
def test_oci_pull_verifies_the_pushed_provenance(published, gpg_key, tmp_path, helm_name):
    """helm push took the .prov along: `helm pull --verify` from the registry checks it."""
    out = consumer(tmp_path, "pull", published.oci, "--version", CURRENT, "--plain-http", "--verify",
                   "--keyring", gpg_key.pubring, "-d", tmp_path, helm_name=helm_name)
    assert gpg_key.fingerprint in out.stdout + out.stderr, out.stdout + out.stderr


def cosign_verify(ref, pub, check=False):
    cosign = tools.require("cosign")
    return run([cosign, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry",
                "--allow-insecure-registry", ref], env=offline_env(), check=check)


@pytest.mark.e2e
def test_cosign_verifies_the_published_artifact(published, cosign_keys):
    ref = f"{published.registry.host}/{published.registry.namespace}/{NAME}:{CURRENT}"
    proc = cosign_verify(ref, cosign_keys.pub)
    assert proc.returncode == 0, f"cosign verify {ref} failed:\n{proc.stderr}"
    claims = json.loads(proc.stdout)
    pushed = json.loads((published.base / "r-current" / "dest" / f"{NAME}-{CURRENT}.json").read_text())["oci"]
    digests = {c["critical"]["image"]["docker-manifest-digest"] for c in claims}
    assert digests == {pushed.rsplit("@", 1)[1]}, f"signed {digests}, pushed {pushed}"


@pytest.mark.e2e
def test_cosign_refuses_a_tampered_artifact_and_another_key(gpg_key, cosign_keys, tmp_path):
    """A package pushed over the signed tag (same name and version, other content) fails
    `cosign verify`; so does the genuine artifact checked with another public key."""
    cosign = tools.require("cosign")
    with Registry(tmp_path / "registry") as registry:
        release(copy_work_tree(tmp_path / "src"), gpg_key, tmp_path / "r", "--oci", registry.oci, "--plain-http",
                cosign_keys=cosign_keys)
        ref = f"{registry.host}/{registry.namespace}/{NAME}:{CURRENT}"
        assert cosign_verify(ref, cosign_keys.pub).returncode == 0

        other = tmp_path / "other"
        other.mkdir()
        run([cosign, "generate-key-pair"], cwd=other, env=offline_env(COSIGN_PASSWORD="x"))
        proc = cosign_verify(ref, other / "cosign.pub")
        assert proc.returncode != 0, f"cosign verify passed with another key:\n{proc.stdout}"

        tampered = tamper_package(tmp_path / "r" / "dest" / f"{NAME}-{CURRENT}.tgz", tmp_path)
        run([tools.require("helm"), "push", tampered, registry.oci, "--plain-http"],
            env=offline_env(**helm_homes(tmp_path / "attacker")))
        proc = cosign_verify(ref, cosign_keys.pub)
        assert proc.returncode != 0, f"cosign verify passed for a tampered artifact:\n{proc.stdout}"
        assert re.search(r"no (matching )?signatures", proc.stderr, re.I), proc.stderr


@pytest.mark.e2e
def test_release_refuses_a_version_already_in_the_registry(published, gpg_key, cosign_keys, tmp_path):
    proc = release(copy_work_tree(tmp_path / "src"), gpg_key, tmp_path, "--oci", published.registry.oci,
                   "--plain-http", cosign_keys=cosign_keys, check=False)
    refused(proc, f"{NAME} {CURRENT} already exists in {published.oci}")


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


@pytest.mark.e2e
def test_release_refuses_a_version_older_than_the_registry_has(published, gpg_key, cosign_keys, tmp_path):
    """A chart whose version is new to the registry but older than its newest (here the previous
    release re-versioned just below the current one) is refused: not bumped."""
    repo = repo_from_package(previous_package(), tmp_path / "prev")
    chart_yaml = repo / "charts" / NAME / "Chart.yaml"
    major, minor, patch = (int(x) for x in CURRENT.split("."))
    lower = f"{major}.{minor}.{patch - 1}" if patch else f"{major}.{minor - 1}.99" if minor else f"{major - 1}.99.0"
    chart_yaml.write_text(re.sub(r"(?m)^version: .*$", f"version: {lower}", chart_yaml.read_text()))
    commit_all(repo, f"version {lower}")
    proc = release(repo, gpg_key, tmp_path, "--oci", published.registry.oci, "--plain-http",
                   cosign_keys=cosign_keys, check=False)
    refused(proc, "version not bumped", f"{published.oci} already has {CURRENT}", lower)
