"""Prometheus helpers for the tests: the rendered configuration and rule files, laid out in a
directory so promtool can check them as Prometheus would see them."""
import re
import shutil
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


def run_rule_tests(tmp_path, rules, test_files):
    """Place the rendered rules beside copies of the promtool test files and run them."""
    tmp_path = Path(tmp_path)
    write_rules(tmp_path, rules)
    names = []
    for f in test_files:
        f = Path(f)
        shutil.copy(f, tmp_path / f.name)
        names.append(f.name)
    return promtool("test", "rules", *names, cwd=tmp_path)


def alerts(rules_text):
    """{alertname: rule dict} of a rendered alert rule file."""
    doc = yaml.safe_load(rules_text)
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def records(rules_text):
    doc = yaml.safe_load(rules_text)
    return {r["record"]: r for g in doc["groups"] for r in g["rules"] if "record" in r}
