#!/usr/bin/env python3
"""A local Kubernetes control plane for a person: `make cluster`.

Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler (bin/kubernetes/<version>/)
and kwok with three simulated nodes on 127.0.0.1, prints the KUBECONFIG to export, and
stops everything on Ctrl-C. The API server is real (admission, Pod Security, RBAC, immutable
fields, evictions); no container runs, so a pod is Ready as soon as it is scheduled.

Usage: scripts/cluster.py [--version v1.37.2] [--dir DIR]
Then, in another shell:  export KUBECONFIG=<printed path>; scripts/deploy-monitoring.sh --no-health-check
"""
import argparse
import sys
import time

from harness.controlplane import ControlPlane, kubernetes_versions
from harness.process import serve_until_interrupted


def main(argv=None):
    versions = kubernetes_versions()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default=versions[0], choices=versions, help="Kubernetes version (tools.versions)")
    ap.add_argument("--dir", help="working directory (default: a temporary one, removed at the end)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    cp = ControlPlane(workdir=args.dir, version=args.version)

    def start():
        cp.start()
        print(f"Kubernetes {cp.server_version()} ready in {time.monotonic() - started:.1f}s at {cp.server}, "
              f"nodes: {', '.join(cp.nodes)}")
        print("StorageClasses: standard (default, expandable), fixed (no expansion)")
        print(f"\n  export KUBECONFIG={cp.kubeconfig}\n")
        print("Logs: " + str(cp.dir / "logs") + "    Ctrl-C stops everything.", flush=True)

    def exited():
        dead = cp.alive()
        return dead and f"{dead[0]} exited:\n{cp.logs(dead[0])}"

    return serve_until_interrupted(start, exited, cp.stop, "stopping the control plane")


if __name__ == "__main__":
    sys.exit(main())
