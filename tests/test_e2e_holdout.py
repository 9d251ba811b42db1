"""e2e tier, the holdout check (issue 25): for every component of the stack
(harness.paths.COMPONENT_NAMES, the component table's rendered names: `alloy` for the
log collector by default), stopping it makes at least one alert reach a receiver within
the alert's `for` plus one evaluation (plus one scrape to see it, the route's group wait and 3 s
of slack) - so a component cannot be added to the chart unwatched.

Real: the chart's rendered prometheus.yml (the monitoring-stack, kube-state-metrics and
node-exporter jobs with their relabel_configs, unchanged), its rendered rule files, and the
rendered Alertmanager (harness.stack.start_alertmanager: receivers pointed at the local sinks),
all defaults on (every component enabled). Every rendered Service of the release is offered to
Prometheus as the endpointslice role would describe one endpoint of it (namespace, Service name,
labels and annotations, port name, pod and node name), so the chart's relabelling decides which
job scrapes what and which component is watched at all.

Simulated, and why: each component's scrape target. Loki, Grafana, the log collector and
kube-state-metrics cannot run here, and Prometheus and Alertmanager are the judges of this test
(they evaluate and deliver), so their own targets stand for a second replica's as the other
replica would see them; node_exporter and Jaeger would run, but what is judged is the alert on
their target, which is the same. Each target is a small HTTP server behind the pod network
(harness.podnet, as in the e2e stack); stopping a component closes its servers, so its scrapes
fail as they do when its pods crash or turn unready (they keep their EndpointSlice entries).
Pods that are gone leave no target at all: MonitoringTargetMissing covers that case, proven
against the API server in tests/test_e2e_stack_faults.py. The kube-state-metrics target serves one pod series
(kube_pod_status_ready), as the real one does. Only `for` durations and the root and warning
group waits are shortened, through the chart's own values.
"""
import json
import re
import time

import pytest
import yaml

from harness import paths, tools
from harness.manifests import Manifests, component
from harness.pipeline import carried, seconds
from harness.podnet import PodNetwork
from harness.podserver import PodServers
from harness.ports import free_port
from harness.process import Process
from harness.render import render_raw
from harness.sinks import Sinks
from harness.stack import start_alertmanager
from harness.swaps import Swaps

pytestmark = pytest.mark.e2e

RELEASE, NAMESPACE = "p5", "monitoring"
JOBS = ("monitoring-stack", "kube-state-metrics", "node-exporter")
EVALUATION, SCRAPE = 1, 1          # seconds
# Long enough that the absent() branches of KubeStateMetricsDown and NodeExporterDown do not fire
# while Prometheus starts (before its first scrape): a group notified then would be notified
# again only after its group_interval, not within the bound.
FOR = "10s"
GROUP_WAIT = 1                     # seconds: the root route's and the warnings'; critical is 0s
SLACK = 3
VALUES = {
    **{f"prometheus.alerts.{a}.for": FOR for a in ("MonitoringTargetDown", "KubeStateMetricsDown", "NodeExporterDown")},
    "alertmanager.webhook.enabled": True,           # every alert, with its labels, to the webhook sink
    "alertmanager.secrets.webhookUrl": "https://webhook.invalid/holdout",
    "alertmanager.route.groupWait": f"{GROUP_WAIT}s",
    "alertmanager.route.warning.groupWait": f"{GROUP_WAIT}s",
    # Every component of the table on, Thanos Query too (off by default; it needs all three).
    "thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
    "grafana.datasources.prometheus.thanosQuery": True,
    # and its Store Gateway and Compactor (rows thanos-store, thanos-compact of the table).
    "thanos.objstoreSecret": "thanos-bucket", "thanos.storeGateway.enabled": True,
    "thanos.compactor.enabled": True,
}
KSM_SERIES = b'kube_pod_status_ready{namespace="monitoring",pod="p5-prometheus-0",uid="u",condition="true"} 1\n'


def _sanitize(key):
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


class Holdout:
    """The rendered Prometheus (three stack jobs, file_sd in place of kubernetes_sd) and
    Alertmanager, one simulated target per rendered Service port, on 127.0.0.1."""

    def __init__(self, workdir, manifests):
        self.dir, self.manifests = workdir, manifests
        self.servers, self.net, self.sinks = PodServers(), PodNetwork(), Sinks()
        self.procs, self.routes, self.targets = [], {}, {}     # targets: component -> [server key]

    def start(self):
        self.servers.start()
        self.net.start()
        self.sinks.start()
        groups = []
        for i, svc in enumerate(self.manifests.of_kind("Service")):
            md, comp = svc["metadata"], component(svc)
            ip = f"10.244.9.{i + 1}"
            meta = {"__meta_kubernetes_namespace": NAMESPACE, "__meta_kubernetes_service_name": md["name"],
                    "__meta_kubernetes_pod_name": f"{md['name']}-0",
                    "__meta_kubernetes_endpointslice_endpoint_node_name": "node-1"}
            for kind, items in (("label", md.get("labels") or {}), ("annotation", md.get("annotations") or {})):
                for k, v in items.items():
                    meta[f"__meta_kubernetes_service_{kind}_{_sanitize(k)}"] = v
                    meta[f"__meta_kubernetes_service_{kind}present_{_sanitize(k)}"] = "true"
            ports = {p["port"] for p in svc["spec"]["ports"]}
            annotated = (md.get("annotations") or {}).get("prometheus.io/port")
            for p in svc["spec"]["ports"]:
                groups.append({"targets": [f"{ip}:{p['port']}"],
                               "labels": {**meta, "__meta_kubernetes_endpointslice_port_name": p.get("name", "")}})
            for port in ports | ({int(annotated)} if annotated else set()):
                key = (comp, md["name"], port)
                body = KSM_SERIES if comp == "kube-state-metrics" else b"holdout_simulated_target 1\n"
                self.routes[(ip, port)] = self.servers.ensure(key, lambda path, body=body: body)
                self.targets.setdefault(comp, []).append(key)
        self.net.set_routes(self.routes)
        (self.dir / "targets.json").write_text(json.dumps(groups))
        self._start_alertmanager()
        self._start_prometheus()
        return self

    def _start_alertmanager(self):
        self.am_port = free_port()
        proc, _ = start_alertmanager(self.manifests, self.dir / "alertmanager", self.sinks, Swaps(), self.am_port)
        self.procs.append(proc)

    def _start_prometheus(self):
        cfg = yaml.safe_load(self.manifests.get("ConfigMap", f"{RELEASE}-prometheus")["data"]["prometheus.yml"])
        rules = self.manifests.get("ConfigMap", f"{RELEASE}-prometheus-rules")["data"]
        rules_dir = self.dir / "rules"
        rules_dir.mkdir()
        for name, text in rules.items():
            (rules_dir / name).write_text(text)
        jobs = []
        for job in cfg["scrape_configs"]:
            if job["job_name"] in JOBS:
                job.pop("kubernetes_sd_configs")
                job.pop("scrape_interval", None)
                job.pop("scrape_timeout", None)
                jobs.append({**job, "file_sd_configs": [{"files": [str(self.dir / "targets.json")]}],
                             "proxy_url": self.net.url})
        assert [j["job_name"] for j in jobs] == list(JOBS), [j["job_name"] for j in cfg["scrape_configs"]]
        cfg.update(scrape_configs=jobs, rule_files=[str(rules_dir / "*")],
                   alerting={"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]})
        cfg["global"].update(scrape_interval=f"{SCRAPE}s", scrape_timeout=f"{SCRAPE}s",
                             evaluation_interval=f"{EVALUATION}s")
        cfg.pop("remote_write", None)
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.prom_port = free_port()
        self.procs.append(Process("prometheus", [
            tools.require("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.prom_port}",
            "--rules.alert.resend-delay=1s"],
            self.dir / "prometheus.log", f"http://127.0.0.1:{self.prom_port}/-/ready").start())

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.net.stop()
        self.servers.stop()
        self.sinks.stop()

    # ------------------------------------------------------------------ reading back
    def scraped(self):
        with __import__("urllib.request").request.urlopen(
                f"http://127.0.0.1:{self.prom_port}/api/v1/targets", timeout=10) as r:
            return json.loads(r.read())["data"]["activeTargets"]

    def prom_alerts(self):
        with __import__("urllib.request").request.urlopen(
                f"http://127.0.0.1:{self.prom_port}/api/v1/alerts", timeout=10) as r:
            return json.loads(r.read())["data"]["alerts"]

    def services(self, comp):
        return {name for c, name, _ in self.targets.get(comp, [])}

    def firing_notifications(self, since):
        """[(labels, at)] of every firing alert the webhook receiver got after `since`."""
        out = []
        for n in self.sinks.received:
            if n.kind == "webhook" and n.key == "webhook" and n.at >= since:
                out += [(a["labels"], n.at) for a in n.body.get("alerts", []) if a["status"] == "firing"]
        return out


def _rule_for(manifests):
    rules = manifests.get("ConfigMap", f"{RELEASE}-prometheus-rules")["data"]
    return {r["alert"]: seconds(r.get("for", "0s")) for text in rules.values()
            for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}


def _belongs(labels, comp, services, jobs_of):
    """An alert names the component: its Service, or a job only the component's targets feed."""
    return labels.get("service") in services or (labels.get("job") in jobs_of and jobs_of[labels["job"]] == {comp})


def check(holdout, components):
    """{component: what is wrong} after stopping the components (empty: all watched).

    Every component with a target is stopped at the same moment and each is then judged on its
    own: an alert naming it (its Service, or a job only its targets feed) must reach a receiver
    within that alert's `for` plus one evaluation, one scrape, the group wait and the slack,
    counted from the stop. Stopping them together proves the same as one after the other (the
    stopped ones stayed stopped then too), in the time of one `for` instead of one per component:
    each alert groups by its own alertname and Service, so it waits on no other component's
    notification, and an inhibition that hid one component's alert behind another's would fail
    the check, not pass it."""
    for_of = _rule_for(holdout.manifests)
    targets = holdout.scraped()
    jobs_of = {}
    for t in targets:
        comp = next((c for c, name, _ in sum(holdout.targets.values(), [])
                     if name == t["labels"].get("service") or name == t["discoveredLabels"].get("__meta_kubernetes_service_name")), None)
        jobs_of.setdefault(t["labels"]["job"], set()).add(comp)
    problems = {}
    watched = []
    for comp in components:
        scraped = [t for t in targets if t["discoveredLabels"].get("__meta_kubernetes_service_name") in holdout.services(comp)]
        if not scraped:
            problems[comp] = f"no target of Prometheus reads it (Services: {sorted(holdout.services(comp)) or 'none'})"
        else:
            watched.append(comp)
    stopped = time.time()
    for comp in watched:
        for key in holdout.targets.get(comp, []):
            holdout.servers.close(key)
    budget = seconds(FOR) + EVALUATION + SCRAPE + GROUP_WAIT + SLACK + 15   # the search; the bound is per alert
    deadline = stopped + budget
    got = {}
    while time.time() < deadline and len(got) < len(watched):
        time.sleep(0.5)
        delivered = holdout.firing_notifications(stopped)
        for comp in watched:
            mine = [(labels, at) for labels, at in delivered if _belongs(labels, comp, holdout.services(comp), jobs_of)]
            if mine and comp not in got:
                got[comp] = mine
    firing = [(a["labels"]["alertname"], a["labels"].get("service")) for a in holdout.prom_alerts()] if len(got) < len(watched) else []
    seen = sorted({(lab["alertname"], lab.get("service"), lab.get("job")) for lab, _ in holdout.firing_notifications(stopped)})
    for comp in watched:
        if comp not in got:
            problems[comp] = (f"no alert naming it reached a receiver within {budget:.0f} s of the stop "
                              f"(active in Prometheus: {firing}; delivered: {seen}; jobs: {jobs_of})")
            continue
        labels, at = min(got[comp], key=lambda x: x[1])
        allowed = for_of[labels["alertname"]] + EVALUATION + SCRAPE + GROUP_WAIT + SLACK
        if at - stopped > allowed:
            problems[comp] = (f"{labels['alertname']} reached a receiver {at - stopped:.1f} s after the stop, "
                              f"more than its for plus one evaluation ({allowed:.0f} s)")
    return problems


@pytest.fixture(scope="module")
def holdout(tmp_path_factory, request):
    tools.require("prometheus")
    tools.require("alertmanager")
    manifests = Manifests(render_raw((), VALUES, release=RELEASE, namespace=NAMESPACE)[0])
    h = Holdout(tmp_path_factory.mktemp("holdout"), manifests)
    request.addfinalizer(h.stop)
    h.start()

    def all_up():
        ts = h.scraped()
        return ts if ts and all(t["health"] == "up" for t in ts) else None
    from harness.polling import wait_until
    wait_until(all_up, 30, "every simulated target scraped up", every=0.5, retry=(OSError,))
    time.sleep(seconds(FOR) + 3)       # the baseline settles: nothing about the targets pending
    early = sorted({lab["alertname"] for lab, _ in h.firing_notifications(0)} - {"Watchdog"})
    assert not early, f"alerts delivered before any component stopped (the check would miss them): {early}"
    return h


def test_stopping_any_component_pages_within_its_for(holdout):
    components = sorted(paths.COMPONENT_NAMES.values())
    assert components, "no components listed"
    problems = check(holdout, components)
    assert not problems, "components that stop unwatched:\n" + "\n".join(f"{c}: {p}" for c, p in problems.items())


def test_a_component_added_without_an_alert_fails_the_check(tmp_path):
    """The check above is not satisfied by construction: a component with a Service Prometheus
    does not scrape (no metrics annotation), added to the list, is reported; so is one with no
    Service at all."""
    tools.require("prometheus")
    tools.require("alertmanager")
    docs = list(render_raw((), VALUES, release=RELEASE, namespace=NAMESPACE)[0])
    docs.append({"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": f"{RELEASE}-fake-cache", "namespace": NAMESPACE,
                              "labels": {"app.kubernetes.io/name": "fake-cache"}},
                 "spec": {"ports": [{"name": "http-metrics", "port": 9121}]}})
    h = Holdout(tmp_path, Manifests(docs))
    try:
        h.start()
        from harness.polling import wait_until
        wait_until(lambda: h.scraped() or None, 30, "targets discovered", every=0.5, retry=(OSError,))
        problems = check(h, ["fake-cache", "fake-without-service"])
    finally:
        h.stop()
    assert set(problems) == {"fake-cache", "fake-without-service"}, problems
    assert "no target" in problems["fake-cache"], problems
