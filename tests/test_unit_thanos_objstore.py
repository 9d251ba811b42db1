"""Unit tier: Thanos on object storage (issue 26): the Store Gateway and the Compactor of the thanos
subchart, off by default. They read the bucket from an existing Secret (the sidecar's Secret and
key, as a file), Query adds the Store Gateway's pods as endpoints, the Compactor runs once per
bucket with the retention and downsampling values, each has its own app.kubernetes.io/name (so
Query's Service, PDB and NetworkPolicy do not take them in), real health paths, the stack's
scrape annotations and hardened pods; operator mode renders none of them.
tests/test_e2e_thanos_objstore.py runs the rendered arguments with the real binaries."""
import json
import re

import pytest

from harness.manifests import containers, pod_spec
from harness.render import NOTES_PROBE, notes, render, render_error, umbrella_copy
from test_unit_thanos import _flag

pytestmark = pytest.mark.unit

THANOS_ON = {"thanos.enabled": True, "prometheus.thanos.sidecar.enabled": True,
             "grafana.datasources.prometheus.thanosQuery": True}
OBJSTORE = {"thanos.objstoreSecret": "thanos-bucket", "thanos.storeGateway.enabled": True,
            "thanos.compactor.enabled": True}
ALL = {**THANOS_ON, **OBJSTORE, "prometheus.thanos.sidecar.objstoreSecret": "thanos-bucket"}


@pytest.fixture(scope="module")
def objs():
    return render(set_values=ALL)


def _one(objs, kind, name):
    (c,) = containers(objs.get(kind, name))
    return c


def _store(objs):
    return _one(objs, "StatefulSet", "p5-thanos-store")


def _compact(objs):
    return _one(objs, "StatefulSet", "p5-thanos-compact")


def test_off_by_default_even_with_query():
    objs = render(set_values=THANOS_ON)
    names = {o["metadata"]["labels"].get("app.kubernetes.io/name") for o in objs}
    assert not names & {"thanos-store", "thanos-compact"}, names
    (c,) = containers(objs.get("Deployment", "p5-thanos-query"))
    addresses = [e["address"] for e in json.loads(_flag(c, "endpoint.sd-config"))["endpoints"]]
    assert not [a for a in addresses if "thanos-store" in a], addresses


@pytest.mark.parametrize("switch", ["thanos.storeGateway.enabled", "thanos.compactor.enabled"])
def test_refused_without_the_objstore_secret_naming_it(switch):
    err = render_error(set_values={**THANOS_ON, switch: True})
    assert "thanos.objstoreSecret" in err and "objstore.yml" in err, err


def test_both_read_the_sidecars_secret_and_key_as_a_file(objs):
    """One Secret for the bucket: the sidecar uploads with it, the Store Gateway and the Compactor
    read with it - the same Secret, the same key, mounted read-only as the file the flag names."""
    sts = objs.get("StatefulSet", "p5-prometheus")
    sidecar = next(c for c in containers(sts) if c["name"] == "thanos-sidecar")
    sidecar_file = _flag(sidecar, "objstore.config-file")
    (sidecar_vol,) = [v for v in pod_spec(sts)["volumes"] if v["name"] == "thanos-objstore"]
    for name in ("p5-thanos-store", "p5-thanos-compact"):
        w = objs.get("StatefulSet", name)
        (c,) = containers(w)
        path = _flag(c, "objstore.config-file")
        assert path.rsplit("/", 1)[1] == sidecar_file.rsplit("/", 1)[1] == "objstore.yml", (path, sidecar_file)
        (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount.get("readOnly") is True, mount
        (vol,) = [v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"]]
        assert vol["secret"]["secretName"] == sidecar_vol["secret"]["secretName"] == "thanos-bucket", vol
        assert [i["key"] for i in vol["secret"].get("items", [{"key": "objstore.yml"}])] == ["objstore.yml"]
        # No credential anywhere else: no env, no ConfigMap for the bucket.
        assert "env" not in c and "envFrom" not in c, c
    assert not [cm for cm in objs.of_kind("ConfigMap") if "objstore" in json.dumps(cm.get("data", {}))]


def test_query_reads_every_store_gateway_pod(objs):
    """dnssrv+_<port>._tcp.<Service>...: the Service is headless (one SRV record per pod), selects
    the Store Gateway's pods and names the port its --grpc-address listens on."""
    (c,) = containers(objs.get("Deployment", "p5-thanos-query"))
    addresses = [e["address"] for e in json.loads(_flag(c, "endpoint.sd-config"))["endpoints"]]
    (store,) = [a for a in addresses if "thanos-store" in a]
    m = re.fullmatch(r"dnssrv\+_([a-z0-9-]+)\._tcp\.([a-z0-9-]+)\.monitoring\.svc\.cluster\.local", store)
    assert m, store
    port_name, svc_name = m.groups()
    svc = objs.get("Service", svc_name)
    assert svc["spec"].get("clusterIP") == "None", f"{svc_name} is not headless"
    sts = objs.get("StatefulSet", "p5-thanos-store")
    assert sts["spec"]["serviceName"] == svc_name
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    (port,) = [p for p in svc["spec"]["ports"] if p["name"] == port_name]
    (cport,) = [p for p in _store(objs)["ports"] if p["name"] == port["targetPort"]]
    assert cport["containerPort"] == port["port"]
    assert _flag(_store(objs), "grpc-address").endswith(f":{port['port']}")


def test_query_selectors_do_not_take_in_the_new_pods(objs):
    """Query's Service and PDB select name=thanos: the Store Gateway and Compactor pods carry
    names of their own, or Grafana's queries would land on a Store Gateway."""
    query_sel = objs.get("Service", "p5-thanos-query")["spec"]["selector"]
    for name in ("p5-thanos-store", "p5-thanos-compact"):
        labels = objs.get("StatefulSet", name)["spec"]["template"]["metadata"]["labels"]
        assert not query_sel.items() <= labels.items(), f"Query's Service selects {name}'s pods: {labels}"
    objs2 = render(set_values={**ALL, "thanos.query.replicas": 2})
    pdb_sel = objs2.get("PodDisruptionBudget", "p5-thanos-query")["spec"]["selector"]["matchLabels"]
    labels = objs2.get("StatefulSet", "p5-thanos-store")["spec"]["template"]["metadata"]["labels"]
    assert not pdb_sel.items() <= labels.items(), (pdb_sel, labels)


def test_compactor_is_one_replica_with_the_retention_values():
    objs = render(set_values={**ALL, "thanos.compactor.retentionRaw": "7d", "thanos.compactor.retention5m": "30d",
                              "thanos.compactor.retention1h": "2y"})
    assert objs.get("StatefulSet", "p5-thanos-compact")["spec"]["replicas"] == 1
    c = _compact(objs)
    assert c["args"][0] == "compact" and "--wait" in c["args"]
    assert (_flag(c, "retention.resolution-raw"), _flag(c, "retention.resolution-5m"),
            _flag(c, "retention.resolution-1h")) == ("7d", "30d", "2y")
    assert "--downsampling.disable" not in c["args"]
    off = _compact(render(set_values={**ALL, "thanos.compactor.downsampling": False}))
    assert "--downsampling.disable" in off["args"]


def test_compactor_replicas_is_not_a_value():
    err = render_error(set_values={**ALL, "thanos.compactor.replicas": 2})
    assert "'replicas' not allowed" in err, err


@pytest.mark.parametrize("name", ["p5-thanos-store", "p5-thanos-compact"])
def test_probes_ask_thanos_own_health_paths_on_the_http_address(objs, name):
    (c,) = containers(objs.get("StatefulSet", name))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    assert _flag(c, "http-address").endswith(f":{ports['http']}")


@pytest.mark.parametrize("name", ["p5-thanos-store", "p5-thanos-compact"])
def test_scraped_by_the_stack_job_on_the_http_port(objs, name):
    svc = objs.get("Service", name)
    ann = svc["metadata"]["annotations"]
    (http,) = [p for p in svc["spec"]["ports"] if p["name"] == "http"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == str(http["port"]), ann
    (c,) = containers(objs.get("StatefulSet", name))
    assert svc["spec"]["selector"].items() <= objs.get("StatefulSet", name)["spec"]["template"]["metadata"]["labels"].items()
    assert _flag(c, "http-address").endswith(f":{http['port']}")


@pytest.mark.parametrize("name", ["p5-thanos-store", "p5-thanos-compact"])
def test_pods_are_hardened_and_write_only_their_data_dir(objs, name):
    w = objs.get("StatefulSet", name)
    spec = pod_spec(w)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    (c,) = containers(w)
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    data = _flag(c, "data-dir")
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == data]
    claims = [t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])]
    assert mount["name"] in claims, f"{name}: {data} is not on its claim {claims}"


def test_without_persistence_the_data_dir_is_an_empty_dir():
    objs = render(set_values={**ALL, "thanos.compactor.persistence.enabled": False,
                              "thanos.storeGateway.persistence.enabled": False})
    for name in ("p5-thanos-store", "p5-thanos-compact"):
        w = objs.get("StatefulSet", name)
        assert not w["spec"].get("volumeClaimTemplates")
        (c,) = containers(w)
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == _flag(c, "data-dir")]
        (vol,) = [v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"]]
        assert "emptyDir" in vol, vol


def test_operator_mode_renders_neither(tmp_path):
    values = {**ALL, "global.operator.enabled": True}
    objs = render(set_values=values)
    assert not [o for o in objs if str(o["metadata"]["labels"].get("app.kubernetes.io/name", "")).startswith("thanos")]
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), (), values)
    for key in ("thanos-store", "thanos-compact"):
        assert re.search(rf"{key}\s+not rendered in operator mode", text), text


def test_notes_and_helm_test_pods_list_them(tmp_path, objs):
    text = notes(umbrella_copy(tmp_path, NOTES_PROBE), (), ALL)
    assert re.search(r"thanos-store\s+p5-thanos-store\n", text) and re.search(r"thanos-compact\s+p5-thanos-compact\n", text), text
    pods = {p["metadata"]["name"]: p for p in objs.of_kind("Pod")}
    for name in ("thanos-store", "thanos-compact"):
        url = pods[f"p5-test-{name}"]["spec"]["containers"][0]["command"][-1]
        assert url == f"http://p5-{name}:10902/-/ready", url


def test_the_sidecars_are_scraped_one_target_per_replica(objs):
    """ThanosSidecarUploadFailing reads the sidecars' own counter: the monitoring-stack job finds
    them through the Prometheus headless Service (one endpoint per pod, not one balanced
    ClusterIP), annotated with the port the sidecar's --http-address listens on."""
    svc = objs.get("Service", "p5-prometheus-headless")
    assert svc["spec"]["clusterIP"] == "None"
    ann = svc["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true", ann
    (port,) = [p for p in svc["spec"]["ports"] if str(p["port"]) == ann["prometheus.io/port"]]
    sts = objs.get("StatefulSet", "p5-prometheus")
    sidecar = next(c for c in containers(sts) if c["name"] == "thanos-sidecar")
    (cport,) = [p for p in sidecar["ports"] if p["name"] == port["targetPort"]]
    assert _flag(sidecar, "http-address").endswith(f":{cport['containerPort']}") and cport["containerPort"] == port["port"]
    prom = objs.get("ConfigMap", "p5-prometheus")["data"]["prometheus.yml"]
    drop = [ln for ln in prom.splitlines() if "p5-prometheus-headless" in ln]
    assert not drop, f"the monitoring-stack job drops the sidecars' Service: {drop}"
