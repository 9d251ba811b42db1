"""e2e tier, operator mode: Prometheus and Alertmanager run for real on 127.0.0.1 with the
configuration the real prometheus-operator GENERATED from the chart's operator-mode objects
(harness.operator_e2e: its swaps O1-O5, on top of the Stack's own in harness/stack.py), and
the chart's own-mode e2e tests (test_e2e_pipeline: targets and labels, recording rules, the
baseline, every alert to exactly its receivers with the templated text, inhibitions, the SLO
page) run unchanged against it: both modes are held to one behaviour.

Needs, besides prometheus and alertmanager, the local control plane (or KUBECONFIG's cluster),
the operator and its CRDs (`make tools`); in CI a missing one fails.
"""
import time

import pytest
import yaml

from harness import operator as op
from harness import paths, pipeline
from harness.cluster import open_cluster
from harness.operator_e2e import RELEASE, GeneratedConfig, kps_discovery_rbac
from harness.stack import Stack

# The chart's own-mode tests, collected here again with this module's `stack`.
# The chart's own-mode tests, collected here again with this module's `stack`, in their order
# there (the baseline before the scenarios).
from test_e2e_pipeline import test_every_target_up_with_contract_labels  # noqa: E402,F401,I001
from test_e2e_pipeline import test_every_recording_rule_yields_series_on_baseline  # noqa: E402,F401
from test_e2e_pipeline import test_baseline_fires_only_the_watchdog  # noqa: E402,F401
from test_e2e_pipeline import scenario_results  # noqa: E402,F401
from test_e2e_pipeline import test_alert_reaches_exactly_its_receivers_with_templated_text  # noqa: E402,F401
from test_e2e_pipeline import test_poddown_of_a_statefulset_pod_reaches_the_critical_receivers  # noqa: E402,F401
from test_e2e_pipeline import test_fast_error_budget_burn_pages  # noqa: E402,F401
from test_e2e_pipeline import test_every_rule_evaluates_without_error  # noqa: E402,F401
from test_e2e_pipeline import test_nothing_delivered_beyond_the_scenarios  # noqa: E402,F401
from test_e2e_pipeline import test_inhibition  # noqa: E402,F401

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    op.crds_dir()
    op.operator_binary()
    with open_cluster(workdir=tmp_path_factory.mktemp("operator-cp")) as cluster:
        with GeneratedConfig(cluster, tmp_path_factory.mktemp("operator"), pipeline.scenario_values()) as gen:
            yield gen


@pytest.fixture(scope="module")
def stack(generated, tmp_path_factory, request):
    swaps = []
    manifests = generated.manifests(swaps)
    st = Stack(tmp_path_factory.mktemp("e2e-operator-stack"), set_values=pipeline.scenario_values(),
               release=RELEASE, namespace=generated.namespace, manifests=manifests,
               workload=pipeline.workload(), extra_nodes=pipeline.extra_nodes(),
               extra_objects=kps_discovery_rbac(generated.namespace))
    request.addfinalizer(st.stop)
    st.swaps.extend(swaps + ["operator O6: the Prometheus ServiceAccount may also read Endpoints, as "
                             "kube-prometheus-stack's Prometheus may (its ServiceMonitor jobs use role endpoints)"])
    st.start()
    st.started = time.monotonic()
    st.generated = generated
    return st


def test_the_running_configuration_is_the_operators(stack):
    """What runs is what the operator generated: its Phase 5 jobs and rule files, its routing
    tree and inhibitions (receiver names unprefixed), and no template file (the AlertmanagerConfig
    carries the phase5.* templates inline)."""
    gen = stack.generated
    ns = gen.namespace
    jobs = {j["job_name"] for j in stack.prom_config["scrape_configs"]}
    assert {f"serviceMonitor/{ns}/{RELEASE}-prometheus-phase5-services/0",
            f"serviceMonitor/{ns}/{RELEASE}-prometheus-phase5-exporters/0"} <= jobs, sorted(jobs)
    assert "phase5-services" not in jobs and "phase5-exporters" not in jobs, \
        f"the chart's own Phase 5 jobs must not run in operator mode: {sorted(jobs)}"
    # Issue 27: the operator turned each ServiceMonitor's limits into the job's, the chart's defaults.
    values = yaml.safe_load((paths.SUBCHARTS_DIR / "prometheus" / "values.yaml").read_text())["scrape"]["jobs"]
    by_name = {j["job_name"]: j for j in stack.prom_config["scrape_configs"]}
    for name in ("phase5-services", "phase5-exporters"):
        job = by_name[f"serviceMonitor/{ns}/{RELEASE}-prometheus-{name}/0"]
        lim = values[name]["limits"]
        got = (job.get("sample_limit"), job.get("label_limit"), job.get("body_size_limit"))
        assert got == (lim["sampleLimit"], lim["labelLimit"], lim["bodySizeLimit"]), f"{name}: limits {got}, chart {lim}"
    loaded = {f.name for f in stack.rule_files}
    assert len(loaded) == len(gen.rule_files) >= 3, (sorted(loaded), sorted(gen.rule_files))
    for f in stack.rule_files:
        assert yaml.safe_load(f.read_text()) in gen.rule_files.values(), f"{f.name} is not a generated rule file"
    run = stack.am_config
    assert run["inhibit_rules"] == gen.alertmanager["inhibit_rules"]
    assert run["route"] == gen.alertmanager_run["route"], "the routing tree changed on the way"
    assert not run.get("templates"), f"template files loaded: {run.get('templates')}"
    names = {r.get("receiver") for r in run["route"].get("routes") or []}
    assert "slack-warnings" in names and "null" == run["route"]["receiver"], (names, run["route"]["receiver"])


def test_the_swaps_are_recorded(stack):
    ours = [s for s in stack.swaps if s.startswith("operator O")]
    assert {s.split(":")[0] for s in ours} >= {"operator O1", "operator O2", "operator O3", "operator O4", "operator O5",
                                               "operator O6"}, ours
    assert any(s.startswith("operator O5") for s in ours), ours
