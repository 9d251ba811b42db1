"""e2e tier: every team's Slack page reaches that team, in both Slack modes of the chart.

Slack app incoming webhooks post to the channel chosen when the webhook was created and ignore
`channel`, so a shared webhook sends every team's page to one place. Mode `webhook` with
`slack.ownWebhooks` gives each receiver its own webhook (Secret key slack-webhook-url-<key>,
the rest keep slack-webhook-url); mode `app` posts every receiver with one bot token to its own
channel through chat.postMessage.

The chart's rendered Alertmanager runs for real on 127.0.0.1 (harness.stack.start_alertmanager:
swaps 8-10 of harness.stack and nothing else), alerts are posted to its API as Prometheus posts
them, and the local Slack sink records which webhook (the credential file the URL came from) or
which token and channel each notification arrived with. Routing, receivers and credential files
are the chart's; only the group waits are shortened, through the chart's own route values.
"""
import datetime
import json
import time
import urllib.request

import pytest

from harness import pipeline
from harness.manifests import Manifests
from harness.pipeline import carried, destination
from harness.ports import free_port
from harness.render import render_raw
from harness.sinks import Sinks
from harness.stack import start_alertmanager
from harness.swaps import Swaps

pytestmark = pytest.mark.e2e

CHANNELS = {**pipeline.CHANNELS, "monitoring": "#e2e-monitoring-team"}
# category -> the team receiver (key of CHANNELS) the spec routes it to, the monitoring team too.
TEAM = {**pipeline.TEAM, "monitoring": "monitoring"}
# Mode webhook: every receiver but the warnings one has its own webhook (the fallback is proven too).
OWN = [k for k in CHANNELS if k != "warnings"]
TOKEN = "xoxb-e2e-bot-token"
FAST = {"alertmanager.route.groupWait": "1s", "alertmanager.route.groupInterval": "1m",
        "alertmanager.route.warning.groupWait": "1s", "alertmanager.route.critical.groupWait": "0s"}
MODES = {
    "webhook": {"alertmanager.slack.mode": "webhook", "alertmanager.slack.ownWebhooks": OWN,
                "alertmanager.secrets.slackWebhookUrl": "https://hooks.slack.invalid/services/shared",
                "alertmanager.secrets.slackWebhookUrls": {k: f"https://hooks.slack.invalid/services/{k}"
                                                          for k in OWN}},
    "app": {"alertmanager.slack.mode": "app", "alertmanager.secrets.slackAppToken": TOKEN},
}
# One page per team category (warning) and one critical page of no team.
PAGES = [{"alertname": "TeamPage", "severity": "warning", "category": c, "service": f"svc-{c}"}
         for c in TEAM] + [{"alertname": "CriticalPage", "severity": "critical",
                            "category": "application", "service": "svc-critical"}]


def _via(mode, key):
    """Where receiver `key`'s notification must arrive: its channel @ its webhook, or @app."""
    if mode == "app":
        return f"{CHANNELS[key]}@app"
    return f"{CHANNELS[key]}@{'slack-webhook-url-' + key if key in OWN else 'slack-webhook-url'}"


def _expected(mode, page):
    keys = {"critical" if page["severity"] == "critical" else "warnings"}
    if page["category"] in TEAM:
        keys.add(TEAM[page["category"]])
    return {_via(mode, k) for k in keys}


def _post(am_port, pages):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    body = [{"labels": {**p, "namespace": "phase5"},
             "annotations": {"summary": f"{p['alertname']} of {p['service']}"},
             "startsAt": now} for p in pages]
    req = urllib.request.Request(f"http://127.0.0.1:{am_port}/api/v2/alerts", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def _arrivals(received):
    """{(alertname, service): [channel@webhook-file, ...]} of the firing Slack notifications."""
    out = {}
    for n in received:
        if n.kind != "slack":
            continue
        via = destination(n).removeprefix("slack:")
        for status, name, svc in carried(n):
            if status == "firing":
                out.setdefault((name, svc), []).append(via)
    return out


@pytest.fixture(scope="module", params=list(MODES))
def delivered(request, tmp_path_factory):
    mode = request.param
    values = {**FAST, **MODES[mode], "alertmanager.slack.channels": CHANNELS,
              "alertmanager.email.enabled": False, "grafana.enabled": False, "loki.enabled": False,
              "promtail.enabled": False, "jaeger.enabled": False}
    manifests = Manifests(render_raw(set_values=values)[0])
    sinks, proc = Sinks().start(), None
    try:
        port = free_port()
        proc, cfg = start_alertmanager(manifests, tmp_path_factory.mktemp(f"am-slack-{mode}"),
                                       sinks, Swaps(), port)
        _post(port, PAGES)
        want = {(p["alertname"], p["service"]): _expected(mode, p) for p in PAGES}
        sinks.wait_for(lambda r: all(w <= set(_arrivals(r).get(k, ())) for k, w in want.items()), 60)
        time.sleep(3)      # anything delivered that should not have been has time to arrive
        yield mode, want, sinks.received, cfg
    finally:
        if proc:
            proc.stop()
        sinks.stop()


def test_every_team_page_reaches_exactly_its_own_webhook_or_channel(delivered):
    mode, want, received, _ = delivered
    got = _arrivals(received)
    for key, dest in want.items():
        assert sorted(got.get(key, [])) == sorted(dest), \
            f"mode {mode}: {key} arrived via {sorted(got.get(key, []))}; the routes send it once to each of {sorted(dest)}"
    stray = set(got) - set(want)
    assert not stray, f"mode {mode}: notifications for alerts nobody posted: {stray}"


def test_app_mode_posts_with_the_secrets_bot_token_and_webhook_mode_without(delivered):
    mode, _, received, cfg = delivered
    slack = [n for n in received if n.kind == "slack"]
    assert slack, f"mode {mode}: no Slack notification"
    auth = {n.authorization for n in slack}
    if mode == "app":
        assert auth == {f"Bearer {TOKEN}"}, f"chat.postMessage requests carried {auth}, not the chart Secret's token"
        files = {c.get("app_token_file") for r in cfg["receivers"] for c in r.get("slack_configs") or []}
        assert len(files) == 1 and files.pop().endswith("/slack-app-token"), files
    else:
        assert auth == {""}, f"incoming webhooks carry no token, got {auth}"
