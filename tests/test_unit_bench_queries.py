"""The query benchmark's model of a large cluster (scripts/bench_queries.py, `make bench-queries`)
holds what the chart reads: every series a panel query or recording rule of the default render
reads exists in the series it backfills, once each. Not timed: speed is `make bench`'s business."""
import json
import sys

import pytest

from harness import dashboards, series_inventory
from harness.paths import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_queries  # noqa: E402

pytestmark = pytest.mark.unit

# Components the default render switches off: their series exist only when they run.
OFF_BY_DEFAULT = ("thanos_", "promtail_")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench-queries") / "series.jsonl"
    bench_queries.write_series(path, 24, 15_000, {}, series_inventory.committed_keep_lists())
    out = []
    for line in path.read_text().splitlines():
        flat = json.loads(line)["l"]
        out.append(dict(zip(flat[::2], flat[1::2])))
    return out


@pytest.fixture(scope="module")
def rules():
    return bench_queries.recording_rules()[1]


def test_every_series_a_panel_or_recording_rule_reads_is_in_the_model(model, rules):
    stored = {s["__name__"] for s in model}
    recorded = {r[2] for r in rules}
    readers = [(f"panel {uid}: {title}", expr) for uid, title, expr in dashboards.panel_queries()]
    readers += [(f"rule {f}: {record}", expr) for f, _, record, _, expr in rules]
    missing = {}
    for who, expr in readers:
        for sel in series_inventory.selectors(expr):
            for name in sel.names:
                if name and name not in stored and name not in recorded and not name.startswith(OFF_BY_DEFAULT):
                    missing.setdefault(name, []).append(who)
    assert not missing, f"series the chart reads that the query benchmark does not write: {missing}"


def test_the_model_writes_each_series_once(model):
    keys = [tuple(sorted(s.items())) for s in model]
    assert len(keys) == len(set(keys)), "duplicate series in the query benchmark's model"


def test_rules_that_read_records_are_backfilled_after_them(rules):
    passes = bench_queries.rule_passes(bench_queries.recording_rules()[2])
    where = {r["record"]: i for i, batch in enumerate(passes) for _, _, r in batch}
    assert where["pod:kube_pod_info:node_workload"] > where["pod:kube_pod_owner:workload"]
    assert where["service:phase5_category:info"] > where["service:phase5_expected:info"]
