#!/usr/bin/env python3
"""A local OCI registry and a classic chart repository on 127.0.0.1, for a person: `make registry`.

Runs the registry (github.com/distribution/distribution/v3, bin/registry) with its storage in
--dir/registry, and serves --dir/repo (index.yaml and the packages) over HTTP. Release into them
and install from them as a chart repository consumer would; Ctrl-C stops both.

Usage: scripts/registry.py [--dir build/local-release] [--registry-port 5000] [--repo-port 8879]
"""
import argparse
import sys
from pathlib import Path
from harness.chartrepo import Registry, RepoServer
from harness.paths import ROOT
from harness.process import serve_until_interrupted


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT / "build" / "local-release"),
                    help="registry storage and repository directory (kept between runs)")
    ap.add_argument("--registry-port", type=int, default=5000)
    ap.add_argument("--repo-port", type=int, default=8879)
    args = ap.parse_args(argv)
    base = Path(args.dir).resolve()
    registry = Registry(base / "registry", port=args.registry_port)
    repo = RepoServer(base / "repo", port=args.repo_port, log_dir=base)

    def start():
        registry.start()
        repo.start()
        print(f"OCI registry:     {registry.oci}   (plain HTTP, storage {registry.dir / 'storage'})")
        print(f"chart repository: {repo.url}   (serves {repo.dir})\n")
        print("Release into them (a throwaway GPG key and cosign key pair will do):")
        print(f"  make release RELEASE_ARGS='--repo-dir {repo.dir} --oci {registry.oci} --plain-http'\n")
        print("Install as a user would:")
        print(f"  helm repo add p5-local {repo.url} && helm search repo p5-local")
        print("  helm install p5 p5-local/phase5-monitoring --version X --verify --keyring pubring.gpg")
        print(f"  helm install p5 {registry.oci}/phase5-monitoring --version X --plain-http")
        print(f"  cosign verify --key cosign.pub --insecure-ignore-tlog=true --allow-http-registry "
              f"{registry.host}/{registry.namespace}/phase5-monitoring:X\n")
        print("Ctrl-C stops both.", flush=True)

    def exited():
        if registry.process.running() and repo.process.running():
            return None
        return "a server exited:\n" + registry.process.log_tail() + "\n" + repo.process.log_tail()

    def stop():
        repo.stop()
        registry.stop()

    return serve_until_interrupted(start, exited, stop)

if __name__ == "__main__":
    sys.exit(main())
