"""e2e tier: the production profile's HA alerting path, run for real on 127.0.0.1 (issue 26).

values/production.yaml renders three Alertmanagers and two Prometheus replicas. Here all five
run (harness.stack, Stack(replicas=True)): the three Alertmanagers with the rendered
configuration AND the rendered cluster flags, so they gossip as in the StatefulSet; only
addresses are swapped (swaps.alertmanager_cluster_flags, swap 10b of harness.stack):

  rendered (pod i of the StatefulSet)                          run here (member i)
  --cluster.listen-address=0.0.0.0:9094                        127.0.0.1:<gossip port i>
  --cluster.advertise-address=$(POD_IP):9094                   127.0.0.1:<gossip port i>
  --cluster.peer=p5-alertmanager-<j>.<headless>.monitoring.svc:9094 (one per j, itself too)
                                                               127.0.0.1:<gossip port j>
  --cluster.peer-timeout and every other flag                  unchanged
  --web.listen-address=:9093, --storage.path                   127.0.0.1:<port i>, a temp dir

The two Prometheus replicas run with the rendered configuration, each with its own pod's env
(POD_NAME: its external `prometheus_replica` label, dropped from alerts by the rendered
alert_relabel_configs). Their Alertmanager discovery is the rendered one (kubernetes_sd over the
Alertmanager Service's EndpointSlices, through the local API server): it finds the three
Alertmanager pods, and the pod network routes each pod's address to its own member. So
"every Prometheus replica sends to every member" is the chart's own discovery, not a static list.

Render inputs, not swaps (chart values, as the other e2e modules do): group waits/intervals and
the peer timeout shortened (FAST), alert `for` durations shortened (pipeline.chart_values).
How long to wait for a duplicate that must not come is derived from the rendered configuration
(quiet_window): a second member sends only after its position x --cluster.peer-timeout, and an
alert that differs (e.g. by the replica label) is added to its group at the next group_interval.

Notifications are counted at the local sinks (harness.sinks): Slack per webhook, SMTP,
PagerDuty, webhook. One stack for the module; the tests run in order and the last one kills a
member.
"""
import datetime
import json
import re
import signal
import time
import urllib.parse
import urllib.request

import pytest

from harness import pipeline
from harness.paths import PROFILES_DIR
from harness.pipeline import deliveries, expected_destinations, seconds
from harness.podfiles import find_workload, flag
from harness.ports import free_port_tcp_udp
from harness.stack import RESEND_DELAY, Stack, start_alertmanager
from harness.swaps import ClusterMember, Swaps
from harness.workload import NAMESPACE, Workload

pytestmark = pytest.mark.e2e

PROFILE = PROFILES_DIR / "production.yaml"
# Render inputs: every route's waits short, and the peer timeout (the chart's alertmanager.peerTimeout).
FAST = {"alertmanager.route.groupWait": "1s", "alertmanager.route.groupInterval": "10s",
        "alertmanager.route.warning.groupWait": "1s", "alertmanager.route.warning.groupInterval": "10s",
        "alertmanager.route.critical.groupInterval": "10s", "alertmanager.peerTimeout": "5s",
        "prometheus.alerts.AlertmanagerClusterMembersMissing.for": "4s",
        "prometheus.alerts.AlertmanagerClusterSplit.for": "4s"}
CLUSTER_ALERTS = ("AlertmanagerClusterMembersMissing", "AlertmanagerClusterSplit")
# Scenarios (harness.scenarios) per phase, each on a service of its own.
ONCE = ["HighErrorRate", "KafkaConsumerLag", "DatabaseConnectionPoolExhausted"]
AFTER_KILL = ["AuditLogFailures", "ReminderDeliveryFailures"]
SILENCED, UNSILENCED = "ha-silenced", "ha-unsilenced"
FOR = {a: "6s" for a in ONCE + AFTER_KILL}


def _svc(phase, alert):
    return f"ha-{phase}-" + re.sub(r"(?<!^)([A-Z])", r"-\1", alert).lower()


SERVICES = [_svc("once", a) for a in ONCE] + [_svc("kill", a) for a in AFTER_KILL] + [SILENCED, UNSILENCED]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _json(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _metric(text, name):
    """The value of an unlabelled sample `name` on a /metrics page (None when absent)."""
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def _sent(text):
    """{integration: notifications sent} of one Alertmanager's /metrics."""
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^alertmanager_notifications_total\{integration="([^"]+)"[^}]*\} (\S+)$', text, re.M)}


def quiet_window(stack):
    """Seconds after the first notification of an alert within which any duplicate would have
    arrived, from the rendered configuration: member n (n = 1..replicas-1) notifies only after
    n x --cluster.peer-timeout, and what it sends then is what the gossiped notification log
    lacked; an alert a replica sends with different labels joins its group at the next
    group_interval (the longest of the routes the test's alerts take: all but the Watchdog's).
    Plus Prometheus' resend delay and one evaluation, for an alert that reached a member late."""
    sts = find_workload(stack.manifests, "alertmanager")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    members = int(sts["spec"]["replicas"])
    peer_timeout = seconds(flag(args, "cluster.peer-timeout"))
    route = stack.am_config["route"]
    intervals = [seconds(route["group_interval"])] + [
        seconds(r.get("group_interval", route["group_interval"])) for r in route.get("routes") or []
        if r.get("receiver") != "watchdog"]
    return max((members - 1) * peer_timeout, max(intervals)) + seconds(RESEND_DELAY) + seconds(stack.interval)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    values = {**pipeline.chart_values(FOR), **FAST}
    st = Stack(tmp_path_factory.mktemp("e2e-ha"), values_files=[PROFILE], set_values=values,
               workload=Workload(services=SERVICES), replicas=True)
    request.addfinalizer(st.stop)
    st.start()
    st.quiet = quiet_window(st)
    return st


def _am_urls(stack, alive=True):
    return [f"http://127.0.0.1:{stack.port_of('alertmanager', i)}" for i, p in enumerate(stack.alertmanagers)
            if not alive or p.running()]


def _prom_urls(stack):
    return [f"http://127.0.0.1:{stack.port_of('prometheus', i)}" for i in range(len(stack.prometheuses))]


def _members(stack):
    """{member url: (cluster members it sees, its peer position)} of the running members."""
    out = {}
    for url in _am_urls(stack):
        page = _get(f"{url}/metrics")
        out[url] = (_metric(page, "alertmanager_cluster_members"), _metric(page, "alertmanager_peer_position"))
    return out


def _wait_members(stack, n, timeout=60):
    return stack.wait(lambda: (lambda m: m if all(v[0] == n for v in m.values()) else None)(_members(stack)),
                      timeout, what=f"every running Alertmanager sees {n} cluster members")


def _deliver(stack, keys, started):
    """Wait until each (alert, service) in `keys` reached all its receivers, then for the quiet
    window after the last first arrival; returns deliveries() of what arrived since `started`."""
    want = {k: expected_destinations(k[0]) for k in keys}

    def arrived(received):
        d = deliveries([n for n in received if n.at >= started])
        return d if all(w <= set(d.get(k, {})) for k, w in want.items()) else None
    got = stack.sinks.wait_for(arrived, 90)
    assert got, (f"not every alert reached its receivers in 90 s: want {want}, got "
                 f"{ {k: v for k, v in deliveries([n for n in stack.sinks.received if n.at >= started]).items() if k in want} }")
    last = max(n.at for n in stack.sinks.received if n.at >= started)
    time.sleep(max(0.0, last + stack.quiet - time.time()))
    return want, deliveries([n for n in stack.sinks.received if n.at >= started])


def _exactly_once(want, got, what):
    problems = []
    for key, dests in want.items():
        have = got.get(key, {})
        if have != {d: 1 for d in dests}:
            problems.append(f"{key}: {have}; want each of {sorted(dests)} once")
    assert not problems, f"{what}:\n" + "\n".join(problems)


def _firing_on(url, alert, service):
    alerts = _json(f"{url}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing" and a["labels"]["alertname"] == alert
            and a["labels"].get("service") == service]


# ----------------------------------------------------------------------------- (a) the cluster forms
def test_three_members_see_each_other_and_each_prometheus_sends_to_all(stack):
    members = _wait_members(stack, 3)
    assert sorted(p for _, p in members.values()) == [0, 1, 2], \
        f"peer positions {members}: each member must hold its own place in the notification order"
    for url in _am_urls(stack):
        assert _metric(_get(f"{url}/metrics"), "alertmanager_cluster_enabled") == 1, url
    am_pods = {f"{p['status']['podIP']}:9093" for p in stack.cluster.refresh().pods
               if p["metadata"]["namespace"] == stack.namespace
               and p["metadata"]["name"].startswith(f"{stack.release}-alertmanager-") and p["status"].get("podIP")}
    assert len(am_pods) == 3, f"Alertmanager pods in the API server: {am_pods}"
    for url in _prom_urls(stack):
        def discovered():
            active = _json(f"{url}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            return {a["url"].split("//", 1)[1].split("/", 1)[0] for a in active} == am_pods
        stack.wait(discovered, 30, what=f"{url} discovers the three Alertmanager pods")
    replicas = {re.search(r"prometheus_replica: (\S+)", _json(f"{u}/api/v1/status/config")["data"]["yaml"]).group(1)
                for u in _prom_urls(stack)}
    assert replicas == {f"{stack.release}-prometheus-0", f"{stack.release}-prometheus-1"}, replicas
    # The members' own metrics reach Prometheus (the alerts about the cluster read them).
    def scraped():
        got = {s["metric"].get("pod"): float(s["value"][1]) for s in stack.query("alertmanager_cluster_members")}
        return got if got == {f"{stack.release}-alertmanager-{i}": 3 for i in range(3)} else None
    stack.wait(scraped, 30, what="alertmanager_cluster_members of the three pods scraped as 3")


# ----------------------------------------------------------------------------- (b) exactly once
def test_each_alert_reaches_each_receiver_exactly_once(stack):
    before = {u: _sent(_get(f"{u}/metrics")) for u in _am_urls(stack)}
    started = time.time()
    keys = [(a, stack.workload.trigger(a, _svc("once", a))) for a in ONCE]
    want, got = _deliver(stack, keys, started)
    after = {u: _sent(_get(f"{u}/metrics")) for u in _am_urls(stack)}
    senders = {u: {k: after[u][k] - before[u].get(k, 0) for k in after[u] if after[u][k] > before[u].get(k, 0)}
               for u in after}
    _exactly_once(want, got, f"duplicates or losses (notifications sent per member: {senders})")
    # Meanwhile the cluster's own alerts stayed quiet on both replicas (they read the members' metrics).
    seconds = int(time.time() - started) + 1
    for url in _prom_urls(stack):
        q = f'ALERTS{{alertname=~"{"|".join(CLUSTER_ALERTS)}"}}[{seconds}s]'
        seen = _json(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': q})}")["data"]["result"]
        assert not seen, f"{url}: a healthy cluster raised {[s['metric'] for s in seen]}"
    # Both replicas fired each alert and every member holds it: three Alertmanagers had the
    # alert from two Prometheus servers, and still each receiver got it once.
    for alert, svc in keys:
        for url in _prom_urls(stack):
            assert _firing_on(url, alert, svc), f"{url} does not fire {alert} of {svc}: the pair was not tested"
        for url in _am_urls(stack):
            held = [a for a in _json(f"{url}/api/v2/alerts?filter=service%3D%22{svc}%22")
                    if a["labels"]["alertname"] == alert]
            assert len(held) == 1 and "prometheus_replica" not in held[0]["labels"], \
                f"{url} holds {len(held)} {alert} alerts of {svc} (one expected, without prometheus_replica): {held}"


# ----------------------------------------------------------------------------- (d) silences
def test_a_silence_made_on_one_member_holds_on_all(stack):
    urls = _am_urls(stack)
    now = datetime.datetime.now(datetime.timezone.utc)
    sid = _json(f"{urls[1]}/api/v2/silences", {
        "matchers": [{"name": "service", "value": SILENCED, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(hours=1)).isoformat(),
        "createdBy": "e2e", "comment": "issue 26: a silence made on one member"})["silenceID"]
    for url in urls:
        stack.wait(lambda u=url: _json(f"{u}/api/v2/silence/{sid}")["status"]["state"] == "active", 30,
                   what=f"silence {sid} made on {urls[1]} active on {url}")
    started = time.time()
    stack.workload.trigger("HighErrorRate", SILENCED)
    stack.workload.trigger("HighErrorRate", UNSILENCED)
    for url in urls:
        def suppressed(u=url):
            held = [a for a in _json(f"{u}/api/v2/alerts?filter=service%3D%22{SILENCED}%22")
                    if a["labels"]["alertname"] == "HighErrorRate"]
            return held and held[0]["status"]["state"] == "suppressed" and held[0]["status"]["silencedBy"] == [sid]
        stack.wait(suppressed, 60, what=f"HighErrorRate of {SILENCED} held and silenced by {sid} on {url}")
    want, got = _deliver(stack, [("HighErrorRate", UNSILENCED)], started)
    _exactly_once(want, got, "the unsilenced twin")
    assert ("HighErrorRate", SILENCED) not in got, \
        f"the silence made on one member did not hold: {got[('HighErrorRate', SILENCED)]}"


# ----------------------------------------------------------------------------- (c) losing a member
def test_a_member_killed_while_alerts_fire_loses_and_repeats_nothing(stack):
    first = {k: v for k, v in deliveries(stack.sinks.received).items() if k[1] in SERVICES}
    members = _members(stack)
    sender = next(u for u, (_, pos) in members.items() if pos == 0)
    index = _am_urls(stack, alive=False).index(sender)
    # The member that notifies first (position 0), killed as a crash would: no leave message.
    stack.alertmanagers[index].stop(sig=signal.SIGKILL)
    started = time.time()
    keys = [(a, stack.workload.trigger(a, _svc("kill", a))) for a in AFTER_KILL]
    want, got = _deliver(stack, keys, started)
    _exactly_once(want, got, f"alerts that fired after {sender} was killed")
    now = {k: v for k, v in deliveries(stack.sinks.received).items() if k in first}
    assert now == first, f"alerts delivered before the kill were sent again by the survivors: {first} -> {now}"
    # The shipped alert sees it: the survivors count two members, Prometheus still has three targets.
    _wait_members(stack, 2)
    stack.wait(lambda: any(_firing_on(u, "AlertmanagerClusterMembersMissing", f"{stack.release}-alertmanager")
                           for u in _prom_urls(stack)), 60, what="AlertmanagerClusterMembersMissing firing")


def test_a_member_that_cannot_reach_its_peers_fires_the_split_alert(stack):
    """The killed pod comes back unable to reach its peers, and they unable to reach it: it counts
    itself first, as the survivors' first member does, and both notify. The chart's
    AlertmanagerClusterSplit, evaluated by both replicas on the members' scraped metrics, fires.

    Both directions have to be cut, or gossip heals the split: the survivors keep the killed
    member's gossip address, retry it as a failed peer (every --cluster.reconnect-interval, 10 s)
    and re-join their --cluster.peer addresses (every 15 s). A member that came back on that
    same address was pulled into the cluster within seconds, and with a newer peer name (a ULID)
    it sorts last: position 2, no split. So it comes back as a recreated pod does, on a new
    address (its own gossip port is a fresh one), and its --cluster.peer addresses lead nowhere;
    the survivors' --cluster.peer for it still names the old address, which nothing serves now."""
    dead = next(i for i, p in enumerate(stack.alertmanagers) if not p.running())
    nowhere = [free_port_tcp_udp() for _ in stack.gossip_ports]
    assert not set(nowhere) & set(stack.gossip_ports), (nowhere, stack.gossip_ports)
    stack.alertmanagers[dead], _ = start_alertmanager(
        stack.manifests, stack.workdir / f"alertmanager-{dead}-isolated", stack.sinks, Swaps(),
        stack.port_of("alertmanager", dead), cluster=ClusterMember(dead, nowhere))
    isolated = f"http://127.0.0.1:{stack.port_of('alertmanager', dead)}"

    def split():
        m = _members(stack)
        return m if sorted(p for _, p in m.values()) == [0, 0, 1] and m[isolated] == (1, 0) else None
    positions = stack.wait(split, 60, what="the isolated member (alone, position 0) and the survivors' "
                                            "first member both at position 0")
    for url in _prom_urls(stack):
        try:
            stack.wait(lambda u=url: any(a["labels"]["alertname"] == "AlertmanagerClusterSplit"
                                         and a["labels"].get("service") == f"{stack.release}-alertmanager"
                                         and float(a["value"]) == 2
                                         for a in _json(f"{u}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"),
                       60, what=f"AlertmanagerClusterSplit (2 members at position 0: {positions}) firing on {url}")
        except TimeoutError as e:
            seen = {q: [(r["metric"], r["value"][1]) for r in _json(
                        f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q}))["data"]["result"]]
                    for q in ("alertmanager_peer_position", "alertmanager_cluster_enabled",
                              'up{job="monitoring-stack"}')}
            alerts = [(a["labels"]["alertname"], a["state"], a.get("value")) for a in _json(f"{url}/api/v1/alerts")["data"]["alerts"]]
            raise TimeoutError(f"{e}; the members now (cluster members, position): {_members(stack)}; "
                               f"the series it reads: {seen}; alerts: {alerts}") from None
    # The split held while the alert fired: the isolated member is still alone.
    assert split(), f"the split healed while the alert fired: {_members(stack)}"
