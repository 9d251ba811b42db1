#!/usr/bin/env python3
"""Run the chart's rendered Prometheus + Alertmanager (and Jaeger when bin/jaeger exists)
on 127.0.0.1 against the synthetic Phase 5 workload, exactly as the e2e tests do, and let a
person drive it: switch alert scenarios from a menu and watch what the local Slack, email,
PagerDuty and webhook sinks receive. Ctrl-C (or q) stops everything.

    make preview                      # short `for` durations (the e2e values)
    .venv/bin/python scripts/preview.py --spec-for    # the chart's own `for` durations
"""
import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

from harness import pipeline, tools
from harness.pipeline import ALERTS, carried, destination, scenario_service
from harness.stack import Stack
from harness.workload_state import PHASE5_SERVICES

MENU = list(ALERTS)


def show_menu():
    print("\nScenarios (number [service]; default service: the scenario's own Deployment):")
    for i, a in enumerate(MENU, 1):
        sev, cat = ALERTS[a]
        print(f"  {i:2d}  {a:34s} {sev:8s} {cat}")
    print("   c [service]  back to the healthy baseline (everything, or one service)")
    print("   a            alerts firing in Prometheus / in Alertmanager")
    print("   n            every notification received so far")
    print("   s            what the harness swapped in the rendered configuration")
    print("   5xx N        make every sink answer 5xx for N seconds")
    print("   h            this menu;  q  quit")


def fmt(n):
    alerts = ", ".join(f"{a}[{svc}]:{st}" for st, a, svc in carried(n)) or "(unparsed)"
    return f"{time.strftime('%H:%M:%S', time.localtime(n.at))}  {destination(n):32s} {alerts}"


def watch(stack, stop):
    seen = 0
    while not stop.is_set():
        got = stack.sinks.received
        for n in got[seen:]:
            print(f"\n  >> {fmt(n)}", flush=True)
        seen = len(got)
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec-for", action="store_true", help="keep the chart's default `for` durations")
    ap.add_argument("-f", "--values", action="append", default=[], help="extra values file (e.g. values/dev.yaml)")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="phase5-preview-"))
    values = pipeline.chart_values({} if args.spec_for else None)
    stack = Stack(workdir, values_files=args.values, set_values=values,
                  workload=pipeline.workload(), jaeger=bool(tools.find("jaeger")),
                  extra_nodes=pipeline.extra_nodes())
    stop = threading.Event()
    try:
        print("starting (render, a local Kubernetes control plane with the chart and the workload, sinks, node_exporter, Alertmanager, Prometheus) ...", flush=True)
        stack.start()
        print(f"\nPrometheus   {stack.prom_url}   (API; e.g. {stack.prom_url}/api/v1/alerts)")
        print(f"Alertmanager {stack.am_url}   (API: {stack.am_url}/api/v2/alerts)")
        if stack.jaeger:
            print(f"Jaeger query {stack.jaeger.url('http-query')}   OTLP/HTTP {stack.jaeger.url('http-otlp')}")
        print(f"Sinks        http://127.0.0.1:{stack.sinks.http_port} (Slack /slack, PagerDuty, /webhook), "
              f"SMTP {stack.sinks.smtp_address}")
        print(f"Workdir      {workdir}  (rendered+swapped configs, logs)")
        print(f"Phase 5 services: {', '.join(PHASE5_SERVICES)}")
        threading.Thread(target=watch, args=(stack, stop), daemon=True).start()
        show_menu()
        while True:
            try:
                line = input("\n> ").strip()
            except EOFError:
                break
            if not line:
                continue
            cmd, *rest = line.split()
            if cmd == "q":
                break
            if cmd == "h":
                show_menu()
            elif cmd == "c":
                stack.workload.clear(rest[0] if rest else None)
                print("baseline restored" + (f" for {rest[0]}" if rest else ""))
            elif cmd == "a":
                for a in stack.prom_alerts():
                    lab = a["labels"]
                    print(f"  prometheus  {a['state']:8s} {lab['alertname']:32s} {lab.get('service', '')} {lab.get('pod', '')}")
                for a in stack.am_alerts():
                    lab, st = a["labels"], a["status"]
                    print(f"  alertmanager {st['state']:9s} {lab['alertname']:32s} {lab.get('service', '')}"
                          + (" (inhibited)" if st.get("inhibitedBy") else ""))
            elif cmd == "n":
                for n in stack.sinks.received:
                    print("  " + fmt(n))
            elif cmd == "s":
                print("\n".join("  - " + s for s in stack.swaps))
            elif cmd == "5xx" and rest:
                stack.sinks.fail_for(float(rest[0]))
                print(f"every sink answers 5xx for {rest[0]} s")
            elif cmd.isdigit() and 1 <= int(cmd) <= len(MENU):
                alert = MENU[int(cmd) - 1]
                target = rest[0] if rest else scenario_service(alert)
                try:
                    key = stack.workload.trigger(alert, target)
                except KeyError as e:
                    print(e)
                    continue
                print(f"{alert} scenario on {key}; `for` {values.get(f'prometheus.alerts.{alert}.for', 'chart default')}"
                      f", then the route's group wait")
            else:
                print("?  (h for the menu)")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        print("\nstopping ...", flush=True)
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("stopped")


if __name__ == "__main__":
    main()
