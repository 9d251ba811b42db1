"""The e2e stack (harness.stack.Stack) running what prometheus-operator GENERATED from the
chart's operator-mode objects, so operator mode is held to the same alert-to-receiver table as
the chart's own mode.

How: the chart's operator-mode objects (PrometheusRules, ServiceMonitors, AlertmanagerConfig and
the credentials Secret) are applied on a real API server where the real operator watches a
Prometheus and an Alertmanager resource (harness.kps). The operator writes its Prometheus
configuration, rule ConfigMaps and Alertmanager configuration; those three texts replace the
chart's own configuration in the full-stack render of the same values, and the Stack runs that
render exactly as in the chart's mode (its documented swaps: the harness.stack docstring). The swaps
this adds, each recorded in `swaps`, and nothing else:

  O1. Prometheus rule_files: the operator's mount path (/etc/prometheus/rules/<configmap>/) ->
      the chart's (/etc/prometheus/rules/), where the operator's rule files are mounted instead
      of the chart's.
  O2. Prometheus alerting.alertmanagers: the operator's discovery of its Alertmanager's pods
      (not in the e2e stack's cluster) -> the chart's own; the operator's alert_relabel_configs stay.
  O3. Scrape jobs the existing kube-prometheus-stack brings itself (kube-state-metrics,
      node-exporter, kubelet, cAdvisor, the monitoring stack): the chart's own jobs stand in for
      them, beside the operator's jobs of the Phase 5 ServiceMonitors.
  O4. `$(POD_NAME)` and `$(SHARD)` (external labels, the sharding relabel step) expanded to the
      pod name and shard 0, as the operator's config-reloader does before Prometheus reads the file.
  O5. Alertmanager receiver names: the operator's `<namespace>/<AlertmanagerConfig>/` prefix
      removed (in receivers and every route alike), so the sinks key deliveries as in the chart's
      mode; the routing tree, inhibitions and receiver settings are the operator's, unchanged.
  O6. RBAC: the Prometheus that runs the operator's configuration is kube-prometheus-stack's,
      whose ServiceAccount may read Endpoints (the operator generates ServiceMonitor jobs with
      role endpoints); the e2e stack's Prometheus ServiceAccount is granted the same discovery
      reads (KPS_DISCOVERY_ROLE), beside the chart's own ClusterRole.
"""
import copy
import json
import re

import yaml

from . import operator as op
from .kps import OperatorStack
from .manifests import Manifests
from .stack import NOT_RUN
from .render import render_raw

RELEASE = "p5"
# The chart's scrape jobs that stand in for kube-prometheus-stack's own ServiceMonitors (O3).
KPS_OWN_JOBS = ("monitoring-stack", "kube-state-metrics", "node-exporter", "kubelet", "cadvisor")
# What the operator's config-reloader expands in the generated file before Prometheus reads it
# (the pod's name; the shard of a single-shard Prometheus).
RELOADER_ENV = {"POD_NAME": "prometheus-kps-0", "SHARD": "0"}


def kps_discovery_rbac(namespace, release=RELEASE):
    """O6: what kube-prometheus-stack's Prometheus may read for discovery, bound to the e2e
    stack's Prometheus ServiceAccount."""
    name = f"{namespace}-{release}-kps-discovery"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["get", "list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": f"{release}-prometheus", "namespace": namespace}]}
    return [role, binding]


def _rename(route, prefix):
    route = dict(route)
    if "receiver" in route:
        route["receiver"] = route["receiver"].removeprefix(prefix)
    if route.get("routes"):
        route["routes"] = [_rename(r, prefix) for r in route["routes"]]
    return route


class GeneratedConfig:
    """What the operator generated for the chart's operator-mode objects of `values`."""

    def __init__(self, cluster, workdir, values, timeout=180):
        self.cluster, self.workdir, self.values, self.timeout = cluster, workdir, dict(values), timeout
        self.kps = None

    def __enter__(self):
        self.kps = OperatorStack(self.cluster, self.workdir).start()
        try:
            self._generate()
        except BaseException:
            self.kps.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.kps.stop()
        for ns in (getattr(self, "namespace", None), self.kps.namespace):
            if ns:
                self.cluster.delete_namespace(ns)

    def _generate(self):
        c = self.cluster
        self.namespace = c.new_namespace("p5-e2e-operator")
        vals = {**self.values, **op.OPERATOR_VALUES, "global.operator.selectorLabels": {"release": "kps"}}
        docs, _ = render_raw((), vals, namespace=self.namespace, release=RELEASE)
        objs = [d for d in docs if d["kind"] in op.KINDS or
                (d["kind"] == "Secret" and d["metadata"]["name"] == f"{RELEASE}-alertmanager-secrets")]
        c.kubectl("apply", "--server-side", "--field-manager=phase5-e2e", "-f", "-",
                  input="\n---\n".join(json.dumps(o) for o in objs))
        ns, kps = self.namespace, self.kps
        self.prefix = f"{ns}/{RELEASE}-alertmanager/"
        jobs = {f"serviceMonitor/{ns}/{RELEASE}-prometheus-{j}/0" for j in ("phase5-services", "phase5-exporters")}
        want_rules = {d["metadata"]["name"] for d in objs if d["kind"] == "PrometheusRule"}
        box = {}

        def ready():
            if not kps.alive():
                raise RuntimeError(f"prometheus-operator exited:\n{kps.log_tail()}")
            box["prom"], box["rules"], box["am"] = kps.prometheus_config(), kps.rule_files(), kps.alertmanager_config()
            prom, rules, am = box["prom"], box["rules"], box["am"]
            return (prom and jobs <= {j["job_name"] for j in prom.get("scrape_configs") or []}
                    and all(any(k.startswith(f"{ns}-{r}-") for k in rules) for r in want_rules)
                    and am and any(r.get("receiver", "").startswith(self.prefix) for r in am["route"].get("routes") or []))
        try:
            c.wait(ready, self.timeout, "the operator generated the Phase 5 configuration")
        except TimeoutError as e:
            raise RuntimeError(f"{e}\noperator log:\n{kps.log_tail(40)}") from e
        self.prometheus = box["prom"]
        self.rule_files = {k: v for k, v in box["rules"].items() if k.startswith(f"{ns}-")}
        self.alertmanager = box["am"]

    # ------------------------------------------------------------------ into the Stack
    def manifests(self, swaps):
        """The full-stack render of the same values with the operator's generated configuration
        in place of the chart's own (swaps O1-O5 appended to `swaps`)."""
        # The Stack's render inputs: the components it cannot run are rendered off (NOT_RUN).
        docs, _ = render_raw((), {**NOT_RUN, "jaeger.enabled": False, **self.values},
                             namespace=self.namespace, release=RELEASE)
        docs = copy.deepcopy(docs)
        m = Manifests(docs)
        chart_cm = m.get("ConfigMap", f"{RELEASE}-prometheus")
        chart_prom = yaml.safe_load(chart_cm["data"]["prometheus.yml"])
        prom = copy.deepcopy(self.prometheus)
        prom["rule_files"] = chart_prom["rule_files"]
        swaps.append(f"operator O1: rule_files {self.prometheus.get('rule_files')} -> {chart_prom['rule_files']} "
                     f"(the operator's rule files mounted there)")
        alerting = dict(prom.get("alerting") or {})
        alerting["alertmanagers"] = chart_prom["alerting"]["alertmanagers"]
        prom["alerting"] = alerting
        swaps.append("operator O2: alerting.alertmanagers -> the chart's (the operator's Alertmanager pods are "
                     "not in the synthetic cluster); its alert_relabel_configs kept")
        own = [j for j in chart_prom["scrape_configs"] if j["job_name"] in KPS_OWN_JOBS]
        prom["scrape_configs"] = list(prom.get("scrape_configs") or []) + own
        swaps.append(f"operator O3: the chart's jobs {[j['job_name'] for j in own]} stand in for "
                     f"kube-prometheus-stack's own ServiceMonitors")
        text = yaml.safe_dump(prom, sort_keys=False)
        for var, value in RELOADER_ENV.items():
            if f"$({var})" in text:
                text = text.replace(f"$({var})", value)
                swaps.append(f"operator O4: $({var}) -> {value} (expanded by the operator's config-reloader)")
        chart_cm["data"]["prometheus.yml"] = text
        rules_cm = m.get("ConfigMap", f"{RELEASE}-prometheus-rules")
        rules_cm["data"] = {re.sub(r"[^A-Za-z0-9._-]", "_", k): yaml.safe_dump(v, sort_keys=False)
                            for k, v in self.rule_files.items()}
        am = copy.deepcopy(self.alertmanager)
        am["route"] = _rename(am["route"], self.prefix)
        for r in am.get("receivers") or []:
            r["name"] = r["name"].removeprefix(self.prefix)
        swaps.append(f"operator O5: receiver names without the operator's prefix {self.prefix!r}")
        sec = m.get("Secret", f"{RELEASE}-alertmanager-config")
        sec["stringData"]["alertmanager.yaml"] = yaml.safe_dump(am, sort_keys=False)
        self.alertmanager_run = am
        return Manifests(docs)
