"""e2e tier of the chart-repository consumer tests (shared parts: harness/release_consumer.py):
the published chart in a classic repository served on 127.0.0.1 and a local OCI registry, read,
pulled and verified with the real helm, registry and cosign binaries."""
import json
import re

import pytest

from harness import paths, tools
from harness.chartrepo import Registry, offline_env
from harness.release_consumer import (
    CURRENT, NAME, PROV_LAYER, commit_all, consumer, copy_work_tree, cosign_keys, gpg_key,
    helm_homes, previous_package, previous_version, published, refused, release, repo_from_package,
    run, tamper_package)


# ------------------------------------------------------------------------------ published (e2e)
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
