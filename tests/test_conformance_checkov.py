"""Conformance tier: checkov on the rendered manifests of the defaults and every profile, and of
the production profile with every web config on (global.web: TLS and basic auth for Prometheus,
Alertmanager, node-exporter, kube-state-metrics and Thanos (sidecars, Query): their Secrets, the
mounts, the exec/TCP probes and the helm-test pods' shell; TLS for Loki, Grafana and the log
collector, Alloy and Promtail). Zero findings, except those in ci/checkov-skips.yaml,
each with a written reason."""
import json
import re
import subprocess

import pytest
import yaml

from harness import params, paths, tools
from harness.render import render_raw

pytestmark = pytest.mark.conformance

SKIPS = yaml.safe_load((paths.ROOT / "ci" / "checkov-skips.yaml").read_text())
_HASH = "$2b$10$" + "a" * 53
# Renders beside the profiles: id -> (values files, set values).
VARIANTS = {
    "production-web-on": ((paths.PROFILES_DIR / "production.yaml",), {
        "global.web": {c: {"tls": {"enabled": True, "secretName": f"{c}-tls"},
                           "basicAuth": {"enabled": c != "prometheus",     # the profile's Thanos sidecar refuses it
                                         "users": {"p5": _HASH}, "clientSecret": f"{c}-client"}}
                       for c in ("prometheus", "alertmanager", "node-exporter", "kube-state-metrics", "thanos")}
                      | {c: {"tls": {"enabled": True, "secretName": f"{c}-tls"}} for c in ("loki", "grafana", "promtail")},
        "loki.ruler.enabled": False}),      # Loki's ruler refuses Alertmanager basic auth
    # Loki, Grafana and Promtail (the collector the production profile does not run) serving TLS,
    # with Grafana's Ingress: their key pair mounts, the CA-only client volumes, HTTPS probes.
    "production-web-tls-promtail": ((paths.PROFILES_DIR / "production.yaml",), {
        "global.web": {c: {"tls": {"enabled": True, "secretName": f"{c}-tls"}} for c in ("loki", "grafana", "promtail")},
        "promtail.collector": "promtail"}),
}
RENDERS = [p.id for p in params.profiles()] + list(VARIANTS)


def skipped(check_id, resource, kinds):
    """Skip entries covering a finding in a render with these object kinds; an entry with
    `only_without: <Kind>` covers only renders without that kind."""
    return [s for s in SKIPS if s["check"] == check_id and s.get("only_without") not in kinds
            and any(re.fullmatch(r, resource) for r in s["resources"])]


def test_every_skip_has_a_reason():
    for s in SKIPS:
        assert len(s.get("reason", "").strip()) > 20, f"{s['check']}: no written reason"


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    """One checkov run over every render, each in its own directory (checkov's start-up, not the
    scan, is most of a run); its findings told apart by the file they are in."""
    checkov = tools.require("checkov")
    root = tmp_path_factory.mktemp("checkov")
    kinds = {}
    renders = [(p.id, p.values[0], None) for p in params.profiles()] + [(k, *v) for k, v in VARIANTS.items()]
    for name, values, set_values in renders:
        docs, text = render_raw(values, set_values, namespace="monitoring")
        (root / name).mkdir()
        (root / name / "all.yaml").write_text(text)
        kinds[name] = {doc.get("kind") for doc in docs}
    proc = subprocess.run([checkov, "-d", str(root), "--framework", "kubernetes", "--compact", "--quiet",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip(), f"checkov produced no output: {proc.stderr}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]

    def render_of(check):   # file_path: /<root's name>/<render>/all.yaml
        parts = check["file_path"].strip("/").split("/")
        assert parts[-1] == "all.yaml" and parts[-2] in kinds, f"checkov reports an unknown file: {check['file_path']}"
        return parts[-2]
    checked = {render_of(c) for r in reports for k in ("passed_checks", "failed_checks")
               for c in r.get("results", {}).get(k, [])}
    assert checked == set(kinds), f"checkov checked nothing in {sorted(set(kinds) - checked)}"
    out = {name: (kinds[name], []) for name in kinds}
    for r in reports:
        for f in r.get("results", {}).get("failed_checks", []):
            out[render_of(f)][1].append((f["check_id"], f["resource"], f["check_name"]))
    return out


@pytest.mark.parametrize("profile", RENDERS)
def test_no_unexplained_findings(findings, profile):
    kinds, found = findings[profile]
    bad = [f"{cid} {res}: {name}" for cid, res, name in found if not skipped(cid, res, kinds)]
    assert not bad, f"checkov findings without a reason in ci/checkov-skips.yaml ({profile}):\n" + "\n".join(bad)


def test_no_stale_skips(findings):
    used = {(s["check"], r) for kinds, found in findings.values() for cid, res, _ in found
            for s in skipped(cid, res, kinds) for r in s["resources"] if re.fullmatch(r, res)}
    stale = [(s["check"], r) for s in SKIPS for r in s["resources"] if (s["check"], r) not in used]
    assert not stale, f"skip entries that match no finding any more (remove them): {stale}"


def test_the_web_variant_carries_every_web_config():
    """production-web-on scans every server's web config: each component of global.web (the
    umbrella's schema lists them) has its web Secret in that render (the TLS-only components,
    which have none: a volume of their key pair's Secret), so a component added to global.web but
    not to the variant fails here instead of going unscanned."""
    from harness.schema import load_schema, resolve
    root = load_schema(paths.UMBRELLA)
    web = resolve(resolve(root["properties"]["global"], root)["properties"]["web"], root)
    comps = set(web["properties"])
    values, set_values = VARIANTS["production-web-on"]
    docs, _ = render_raw(values, set_values, namespace="monitoring")
    names = {d["metadata"]["name"] for d in docs if d and d.get("kind") == "Secret"}
    mounted = {v["secret"]["secretName"] for d in docs if d and d.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
               for v in d["spec"]["template"]["spec"].get("volumes") or [] if "secret" in v}
    tls_only = {c for c in comps if "basicAuth" not in resolve(web["properties"][c], root)["properties"]}
    assert tls_only, "no TLS-only component in global.web (Loki, Grafana, the log collector)"
    missing = sorted(c for c in comps if (f"{c}-tls" not in mounted if c in tls_only else f"p5-{c}-web" not in names))
    assert comps >= {"prometheus", "thanos"} and not missing, f"web configs not in the scanned render: {missing}"
