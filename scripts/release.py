#!/usr/bin/env python3
"""Publish the umbrella chart as users get it: `make release`.

Packages charts/phase5-monitoring with its subcharts, signs it (Helm provenance, a `.prov`
beside the `.tgz`, with your GPG key), then publishes it to
  - a classic chart repository: the package, its .prov and index.yaml in --repo-dir, the
    previous index.yaml merged so every older version stays installable, and/or
  - an OCI registry: `helm push` to --oci (the .prov goes along), then the pushed artifact
    is signed with cosign (--cosign-key: a key pair, no keyless signing, no transparency log).

It refuses, changing nothing, when: the work tree is dirty (the dirty files are named), the
version already exists in the index or the registry, a newer version is already published,
the chart changed since the last `v<version>` tag without a version bump, Chart.yaml's
`artifacthub.io/signKey` names another key than the one signing, or a key is missing.

Usage (every option also reads an environment variable, in brackets):
  scripts/release.py --gpg-key NAME --gpg-keyring SECRING [--gpg-passphrase-file FILE]
                     [--repo-dir DIR [--repo-url URL]] [--oci oci://HOST/PATH --cosign-key FILE]
  RELEASE_GPG_KEY, RELEASE_GPG_KEYRING, RELEASE_GPG_PASSPHRASE_FILE, RELEASE_REPO_DIR,
  RELEASE_REPO_URL, RELEASE_OCI, COSIGN_KEY (COSIGN_PASSWORD: the cosign key's password).
The keyring is a legacy one, as Helm 3 reads it: `gpg --export-secret-keys NAME > secring.gpg`.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHART = ROOT / "charts" / "phase5-monitoring"


class Refused(Exception):
    """A release that must not happen; the message says why and what to do."""


# ------------------------------------------------------------------------------ tools
def tool(name, env):
    """$ENV, then bin/, then PATH (as the test harness finds tools)."""
    path = os.environ.get(env) or (str(ROOT / "bin" / name) if os.access(ROOT / "bin" / name, os.X_OK) else None) \
        or shutil.which(name)
    if not path:
        raise Refused(f"{name} not found: set ${env}, run `make tools`, or put it on PATH")
    return path


def run(argv, what, cwd=None, input=None, both=False):
    """stdout (stdout + stderr with both=True: helm push reports the digest on stderr)."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, input=input)
    if proc.returncode != 0:
        raise Refused(f"{what} failed ({' '.join(str(a) for a in argv[:3])} ... exited {proc.returncode}):\n"
                      f"{(proc.stderr or proc.stdout).strip()[-3000:]}")
    return proc.stdout + proc.stderr if both else proc.stdout


def semver(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$", str(v))
    if not m:
        raise Refused(f"{v!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    major, minor, patch, pre = m.groups()
    # A pre-release sorts before its release.
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


# ------------------------------------------------------------------------------ checks
def require_inputs(args):
    missing = []
    if not args.gpg_key:
        missing.append("--gpg-key NAME (or $RELEASE_GPG_KEY): the GPG key (name or e-mail) that signs the package")
    if not args.gpg_keyring:
        missing.append("--gpg-keyring FILE (or $RELEASE_GPG_KEYRING): the secret keyring, "
                       "`gpg --export-secret-keys NAME > secring.gpg`")
    elif not Path(args.gpg_keyring).is_file():
        missing.append(f"--gpg-keyring {args.gpg_keyring}: no such file")
    if args.gpg_passphrase_file and not Path(args.gpg_passphrase_file).is_file():
        missing.append(f"--gpg-passphrase-file {args.gpg_passphrase_file}: no such file")
    if not args.repo_dir and not args.oci:
        missing.append("somewhere to publish: --repo-dir DIR (classic repository) and/or --oci oci://HOST/PATH")
    if args.oci:
        if not args.oci.startswith("oci://"):
            missing.append(f"--oci {args.oci}: must start with oci://")
        if not args.cosign_key:
            missing.append("--cosign-key FILE (or $COSIGN_KEY): the cosign private key that signs the OCI "
                           "artifact (`cosign generate-key-pair`; its password in $COSIGN_PASSWORD)")
        elif not Path(args.cosign_key).is_file():
            missing.append(f"--cosign-key {args.cosign_key}: no such file")
    if missing:
        raise Refused("cannot release:\n  - " + "\n  - ".join(missing))


def git(repo, *args):
    return run(["git", "-C", repo, *args], f"git {' '.join(args)}")


def check_clean(repo):
    """Refuse a dirty work tree (modified, staged or untracked files), naming the files."""
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    dirty = [line[3:] for line in status.splitlines() if line.strip()]
    if dirty:
        shown = "\n  ".join(dirty[:30]) + ("\n  ..." if len(dirty) > 30 else "")
        raise Refused(f"the work tree {repo} is dirty: commit or stash these files first "
                      f"(a release is built from a commit):\n  {shown}")


def check_tags(repo, chart_dir, version):
    """The newest v<semver> tag: the chart may not be older, nor changed under the same version."""
    tags = [t for t in git(repo, "tag", "--list", "v*").split() if re.match(r"^v\d+\.\d+\.\d+", t)]
    if not tags:
        return None
    last = max(tags, key=semver)
    if semver(last) > semver(version):
        raise Refused(f"version not bumped: Chart.yaml says {version} but tag {last} is newer; "
                      f"raise `version` in {chart_dir / 'Chart.yaml'}")
    if semver(last) == semver(version):
        rel = os.path.relpath(chart_dir, repo)
        changed = git(repo, "diff", "--name-only", last, "HEAD", "--", rel).split()
        if changed:
            raise Refused(f"version not bumped: the chart changed since tag {last} but Chart.yaml still says "
                          f"{version}; bump `version` in {chart_dir / 'Chart.yaml'}. Changed: {', '.join(changed[:10])}")
    return last


def index_versions(repo_dir, name):
    index = Path(repo_dir) / "index.yaml"
    if not index.exists():
        return {}
    doc = yaml.safe_load(index.read_text()) or {}
    return {e["version"]: e.get("created", "") for e in (doc.get("entries") or {}).get(name) or []}


def check_index(repo_dir, name, version):
    published = index_versions(repo_dir, name)
    index = Path(repo_dir) / "index.yaml"
    if version in published:
        raise Refused(f"{name} {version} already exists in {index} (created {published[version]}): "
                      f"a published version never changes; bump `version` in Chart.yaml")
    newer = [v for v in published if semver(v) > semver(version)]
    if newer:
        raise Refused(f"version not bumped: {index} already has {name} {max(newer, key=semver)}, newer than "
                      f"Chart.yaml's {version}")


def oci_chart_version(helm, ref, version=None, plain_http=False):
    """The version of `ref` (the newest one without `version`), or None when the registry has none."""
    argv = [helm, "show", "chart", ref] + (["--version", version] if version else []) \
        + (["--plain-http"] if plain_http else [])
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode == 0:
        return yaml.safe_load(proc.stdout)["version"]
    err = proc.stderr.strip()
    if re.search(r"not found|unable to locate any tags|name[ _]unknown|manifest[ _]unknown|no tags", err, re.I):
        return None
    raise Refused(f"cannot ask the registry about {ref}{' ' + version if version else ''}: {err[-1500:]}")


def check_registry(helm, oci, name, version, plain_http):
    ref = f"{oci.rstrip('/')}/{name}"
    if oci_chart_version(helm, ref, version, plain_http):
        raise Refused(f"{name} {version} already exists in {ref}: a published version never changes; "
                      f"bump `version` in Chart.yaml")
    newest = oci_chart_version(helm, ref, None, plain_http)
    if newest and semver(newest) > semver(version):
        raise Refused(f"version not bumped: {ref} already has {newest}, newer than Chart.yaml's {version}")


def key_fingerprints(keyring, key):
    """Fingerprints of the keys in `keyring` whose user id contains `key` (as Helm picks it)."""
    # --no-autostart: reading a key file needs no gpg-agent, and none may be left running.
    out = run([tool("gpg", "GPG"), "--batch", "--no-autostart", "--with-colons", "--show-keys", keyring],
              "gpg --show-keys")
    fprs, current, primary = [], None, False
    for line in out.splitlines():
        f = line.split(":")
        if f[0] in ("pub", "sec"):
            current, primary = None, True
        elif f[0] == "fpr" and primary:
            current, primary = f[9], False
        elif f[0] == "uid" and current and key.lower() in f[9].lower() and current not in fprs:
            fprs.append(current)
    if not fprs:
        raise Refused(f"no key with a user id containing {key!r} in {keyring} "
                      f"(`gpg --show-keys {keyring}` lists what it holds)")
    return fprs


def check_sign_key(chart, fingerprints, required=False):
    """Chart.yaml's artifacthub.io/signKey, when set, must be the key that signs."""
    ann = (chart.get("annotations") or {}).get("artifacthub.io/signKey")
    if not ann and required:
        raise Refused("Chart.yaml has no artifacthub.io/signKey annotation (--require-sign-key): add the "
                      f"project key's fingerprint and public key URL, e.g.\n  artifacthub.io/signKey: |\n"
                      f"    fingerprint: {fingerprints[0]}\n    url: https://OWNER.github.io/REPO/pgp_keys.asc")
    if not ann:
        print("release: note: Chart.yaml has no artifacthub.io/signKey annotation; Artifact Hub will not "
              f"show the signing key ({fingerprints[0]})", file=sys.stderr)
        return
    # BaseLoader: a fingerprint of digits only must stay a string (safe_load makes it an int).
    want = str((yaml.load(ann, Loader=yaml.BaseLoader) or {}).get("fingerprint", "")).replace(" ", "").upper()
    if want not in fingerprints:
        raise Refused(f"Chart.yaml's artifacthub.io/signKey fingerprint {want} is not the signing key "
                      f"({', '.join(fingerprints)}): sign with the project's key or update the annotation")


# ------------------------------------------------------------------------------ publishing
def package(helm, chart_dir, dest, args):
    argv = [helm, "package", chart_dir, "-d", dest, "--sign", "--key", args.gpg_key, "--keyring", args.gpg_keyring]
    if args.gpg_passphrase_file:
        argv += ["--passphrase-file", args.gpg_passphrase_file]
    out = run(argv, "helm package --sign")
    tgz = Path(out.strip().rsplit(": ", 1)[-1])
    prov = Path(f"{tgz}.prov")
    if not prov.exists():
        raise Refused(f"helm package wrote no provenance file {prov}")
    run([helm, "verify", tgz, "--keyring", args.gpg_keyring], "helm verify of the new package")
    return tgz, prov


def publish_index(helm, tgz, prov, repo_dir, repo_url):
    """Add the package to the classic repository, merging the previous index.yaml."""
    repo_dir = Path(repo_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="release-index-") as stage:
        shutil.copy2(tgz, stage)
        shutil.copy2(prov, stage)
        argv = [helm, "repo", "index", stage]
        if repo_url:
            argv += ["--url", repo_url]
        if (repo_dir / "index.yaml").exists():
            argv += ["--merge", repo_dir / "index.yaml"]
        run(argv, "helm repo index")
        shutil.copy2(tgz, repo_dir)
        shutil.copy2(prov, repo_dir)
        tmp_index = repo_dir / ".index.yaml.new"
        shutil.copy2(Path(stage) / "index.yaml", tmp_index)
        tmp_index.replace(repo_dir / "index.yaml")
    return repo_dir / "index.yaml"


def push_oci(helm, tgz, oci, plain_http):
    out = run([helm, "push", tgz, oci] + (["--plain-http"] if plain_http else []), "helm push", both=True)
    m = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", out)
    pushed = re.search(r"Pushed:\s*(\S+)", out)
    if not m or not pushed:
        raise Refused(f"helm push printed no digest:\n{out}")
    repo = pushed.group(1).rsplit(":", 1)[0]
    return f"{repo}@{m.group(1)}"


def cosign_sign(cosign, ref, key, plain_http):
    """Sign the pushed artifact with a key pair; nothing goes to a transparency log (offline)."""
    # cosign v3 fetches a signing config (service URLs) from Sigstore's TUF repository unless
    # told not to; with a key and no transparency log nothing needs the network.
    argv = [cosign, "sign", "--key", key, "--use-signing-config=false", "--tlog-upload=false", "--yes"]
    if plain_http:
        argv += ["--allow-http-registry", "--allow-insecure-registry"]
    run(argv + [ref], "cosign sign")


# ------------------------------------------------------------------------------ main
def parse(argv):
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--chart", default=str(DEFAULT_CHART), help="chart directory (default: the umbrella)")
    ap.add_argument("--repo-dir", default=env("RELEASE_REPO_DIR"), help="classic repository directory")
    ap.add_argument("--repo-url", default=env("RELEASE_REPO_URL"),
                    help="URL the repository is served at (default: package URLs relative to index.yaml)")
    ap.add_argument("--oci", default=env("RELEASE_OCI"), help="OCI repository, e.g. oci://ghcr.io/OWNER/charts")
    ap.add_argument("--plain-http", action="store_true", help="the registry speaks plain HTTP (127.0.0.1 only)")
    ap.add_argument("--gpg-key", default=env("RELEASE_GPG_KEY"))
    ap.add_argument("--gpg-keyring", default=env("RELEASE_GPG_KEYRING"))
    ap.add_argument("--gpg-passphrase-file", default=env("RELEASE_GPG_PASSPHRASE_FILE"))
    ap.add_argument("--cosign-key", default=env("COSIGN_KEY"))
    ap.add_argument("--require-sign-key", action="store_true",
                    help="refuse unless Chart.yaml names the signing key (artifacthub.io/signKey); CI sets it")
    ap.add_argument("--expect-version", help="refuse unless Chart.yaml's version is this (the CI tag)")
    ap.add_argument("--dest", default=str(ROOT / "build" / "release"), help="where the package is kept")
    return ap.parse_args(argv)


def release(args):
    require_inputs(args)
    helm = tool("helm", "HELM")
    cosign = tool("cosign", "COSIGN") if args.oci else None
    chart_dir = Path(args.chart).resolve()
    repo = git(chart_dir, "rev-parse", "--show-toplevel").strip()
    chart = yaml.safe_load(run([helm, "show", "chart", chart_dir], "helm show chart"))
    name, version = chart["name"], str(chart["version"])
    semver(version)
    if args.expect_version and args.expect_version.lstrip("v") != version:
        raise Refused(f"Chart.yaml says {version}, but this release is {args.expect_version}: "
                      f"tag the commit v{version} or bump Chart.yaml")
    check_clean(repo)
    check_tags(repo, chart_dir, version)
    if args.repo_dir:
        check_index(args.repo_dir, name, version)
    if args.oci:
        check_registry(helm, args.oci, name, version, args.plain_http)
    fingerprints = key_fingerprints(args.gpg_keyring, args.gpg_key)
    check_sign_key(chart, fingerprints, args.require_sign_key)

    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for old in (dest / f"{name}-{version}.tgz", dest / f"{name}-{version}.tgz.prov"):
        old.unlink(missing_ok=True)
    tgz, prov = package(helm, chart_dir, dest, args)
    summary = {"name": name, "version": version, "package": str(tgz), "size_bytes": tgz.stat().st_size,
               "provenance": str(prov), "gpg_fingerprint": fingerprints[0],
               "commit": git(repo, "rev-parse", "HEAD").strip()}
    if args.oci:
        ref = push_oci(helm, tgz, args.oci, args.plain_http)
        cosign_sign(cosign, ref, args.cosign_key, args.plain_http)
        summary["oci"] = ref
    if args.repo_dir:
        summary["index"] = str(publish_index(helm, tgz, prov, args.repo_dir, args.repo_url))
    (dest / f"{name}-{version}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None):
    args = parse(argv)
    try:
        s = release(args)
    except Refused as e:
        print(f"release: REFUSED: {e}", file=sys.stderr)
        return 1
    print(f"released {s['name']} {s['version']} ({s['size_bytes']} bytes, signed by {s['gpg_fingerprint']})")
    for key in ("index", "oci"):
        if key in s:
            print(f"  {key}: {s[key]}")
    print(f"  summary: {Path(args.dest) / (s['name'] + '-' + s['version'] + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
