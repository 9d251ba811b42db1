"""Prometheus helpers for the tests: the rendered configuration and rule files, laid out in a
directory so promtool can check them as Prometheus would see them."""
import concurrent.futures
import os
import re
import subprocess
from pathlib import Path

import yaml

from . import tools
from .paths import ROOT
from .render import render

RULES_TESTS_DIR = ROOT / "tests" / "rules"
RULES_DIR_IN_POD = "/etc/prometheus/rules"


def rendered(values_files=(), set_values=None, **kw):
    """(prometheus.yml text, {rule file name: text}) as the chart renders them."""
    objs = render(values_files, set_values, **kw)
    release = kw.get("release", "p5")
    config = objs.get("ConfigMap", f"{release}-prometheus")["data"]["prometheus.yml"]
    rules = dict(objs.get("ConfigMap", f"{release}-prometheus-rules")["data"])
    return config, rules


def write_rules(directory, rules):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rules.items():
        (directory / name).write_text(text)
    return directory


def layout(tmp_path, config, rules):
    """Write the rules and a copy of the config whose in-pod paths point into tmp_path.

    rule_files are rewritten to tmp_path/rules; every *_file the config references (service
    account token, CA, remote-write credentials) is created under tmp_path with dummy content.
    Returns the path of the rewritten prometheus.yml.
    """
    tmp_path = Path(tmp_path)
    rules_dir = write_rules(tmp_path / "rules", rules)
    text = config.replace(RULES_DIR_IN_POD, str(rules_dir))
    for path in sorted(set(re.findall(r"_file:\s*\"?(/[^\s\"]+)", text))):
        local = tmp_path / "files" / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("dummy-credential\n")
        text = text.replace(path, str(local))
    out = tmp_path / "prometheus.yml"
    out.write_text(text)
    return out


def promtool(*args, cwd=None):
    """Run promtool; returns CompletedProcess (stdout+stderr in .stdout)."""
    exe = tools.require("promtool")
    return subprocess.run([exe, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def _minutes(duration):
    """A promtool eval_time ("1500m", "2h30m", "90s") in minutes."""
    return sum(float(n) * {"ms": 1 / 60000, "s": 1 / 60, "m": 1, "h": 60, "d": 1440}[u]
               for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", str(duration)))


# What a promtool test group costs, in evaluated minutes: its span at 1-minute steps plus about
# as much again for setting up its storage and rule manager (measured: the SLO groups evaluate
# days and take seconds each; the alert groups minutes, a fraction of a second).
GROUP_SETUP_MINUTES = 60


def run_rule_tests(tmp_path, rules, test_files, jobs=None):
    """Place the rendered rules beside the promtool test files and run them in `jobs` promtool
    processes at once (default: one per core): promtool runs its files' groups one after
    another, and the SLO groups alone evaluate days of 1-minute steps. The groups are dealt out,
    the costliest first (span plus setup), to the process with the least work so far; each
    process gets, per test file it has groups of, a copy of that file with only those groups
    (its other keys kept). Returns a CompletedProcess for all of them: returncode 0 only if every
    process passed, stdout and stderr each process's, `.parts` how many test files ran (promtool
    prints SUCCESS once for each that passes), `.groups` how many groups they hold, and
    `.failed_output` the output of the processes that failed."""
    tmp_path = Path(tmp_path)
    write_rules(tmp_path, rules)
    groups = []
    for f in test_files:
        f = Path(f)
        doc = yaml.safe_load(f.read_text())
        for group in doc["tests"]:
            span = max((_minutes(c.get("eval_time", "0m")) for k in ("alert_rule_test", "promql_expr_test")
                        for c in group.get(k) or []), default=0)
            groups.append((span + GROUP_SETUP_MINUTES, f, doc, group))
    bins = [[0, {}] for _ in range(max(1, min(jobs or os.cpu_count() or 2, len(groups))))]
    for cost, f, doc, group in sorted(groups, key=lambda g: -g[0]):
        b = min(bins, key=lambda b: b[0])
        b[0] += cost
        b[1].setdefault(f, (doc, []))[1].append(group)
    runs = []
    for i, (_, files) in enumerate(bins):
        names = []
        for f, (doc, mine) in files.items():
            name = f"{f.name.removesuffix('.test.yaml')}.part{i}.test.yaml"
            (tmp_path / name).write_text(yaml.safe_dump({**doc, "tests": mine}, sort_keys=False))
            names.append(name)
        runs.append(names)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(runs)) as pool:
        procs = list(pool.map(lambda names: promtool("test", "rules", *names, cwd=tmp_path), runs))
    failed = [proc for proc in procs if proc.returncode]
    result = subprocess.CompletedProcess(["promtool", "test", "rules", *sum(runs, [])],
                                         failed[0].returncode if failed else 0,
                                         "".join(proc.stdout for proc in procs),
                                         "".join(proc.stderr for proc in procs))
    result.parts, result.groups = len(sum(runs, [])), len(groups)
    result.failed_output = "".join(proc.stdout + proc.stderr for proc in failed)
    return result


def alerts(rules_text):
    """{alertname: rule dict} of a rendered alert rule file."""
    doc = yaml.safe_load(rules_text)
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def records(rules_text):
    doc = yaml.safe_load(rules_text)
    return {r["record"]: r for g in doc["groups"] for r in g["rules"] if "record" in r}
