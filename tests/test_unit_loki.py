"""Unit tier: the Loki subchart for the defaults and every profile.

No Loki binary can be built or installed here (Loki is AGPL and not in any registry this
project uses), so the rendered configuration is parsed and its structure is the proof.
That matters: retention only deletes when `retention_enabled` sits in `compactor` and
`retention_period` in `limits_config`, with a delete_request_store naming the object store;
a block in the wrong place is a config that looks right and keeps logs forever.
"""
import base64
import re

import pytest
import yaml

from harness import params
from harness.manifests import containers, ident, pod_spec
from harness.render import render, render_error
from harness.schema import kube_errors

pytestmark = pytest.mark.unit

NAME = "p5-loki"
SECRET_KEY = "s3-secret-do-not-leak"
ACCESS_KEY = "AKIAEXAMPLEKEY"
S3 = {
    "loki.storage.type": "s3",
    "loki.storage.s3.endpoint": "minio.storage.svc:9000",
    "loki.storage.s3.bucket": "phase5-logs",
    "loki.storage.s3.region": "us-east-1",
    "loki.storage.s3.accessKeyId": ACCESS_KEY,
    "loki.storage.s3.secretAccessKey": SECRET_KEY,
}
# Top-level blocks Loki 3.x knows (a subset: the ones this chart may write). A block
# outside this set, or a known key at the wrong level, would be a misplaced setting.
TOP_LEVEL = {"target", "auth_enabled", "server", "common", "schema_config", "storage_config", "ingester",
             "limits_config", "compactor", "query_range", "ruler", "analytics"}


def _loki_config(objs):
    cm = objs.get("ConfigMap", NAME)
    assert set(cm["data"]) == {"loki.yaml"}, f"ConfigMap/{NAME}: keys {sorted(cm['data'])}"
    return yaml.safe_load(cm["data"]["loki.yaml"])


def _container(objs):
    sts = objs.get("StatefulSet", NAME)
    (c,) = containers(sts)
    return sts, c


def _walk_keys(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}" if path else k, v
            yield from _walk_keys(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_keys(v, f"{path}[{i}]")




@pytest.mark.parametrize("values", params.profiles())
def test_retention_deletes_after_31_days(values):
    cfg = _loki_config(render(values))
    assert set(cfg) <= TOP_LEVEL, f"unknown top-level blocks (misplaced?): {sorted(set(cfg) - TOP_LEVEL)}"
    comp, limits = cfg["compactor"], cfg["limits_config"]
    assert comp.get("retention_enabled") is True, f"compactor: {comp}"
    assert limits.get("retention_period") == "744h", f"limits_config.retention_period={limits.get('retention_period')}"
    assert comp.get("working_directory", "").startswith("/var/loki/"), f"compactor.working_directory: {comp}"
    store = cfg["schema_config"]["configs"][-1]["object_store"]
    assert comp.get("delete_request_store") == store, (
        f"compactor.delete_request_store={comp.get('delete_request_store')!r}, want the object store {store!r}")
    # Exactly one place for each retention setting: nothing misplaced elsewhere.
    where = {k: [p for p, _ in _walk_keys(cfg) if p.rsplit(".", 1)[-1] == k]
             for k in ("retention_enabled", "retention_period", "delete_request_store", "working_directory")}
    assert where == {"retention_enabled": ["compactor.retention_enabled"],
                     "retention_period": ["limits_config.retention_period"],
                     "delete_request_store": ["compactor.delete_request_store"],
                     "working_directory": ["compactor.working_directory"]}, where


def test_retention_period_is_a_value():
    cfg = _loki_config(render(set_values={"loki.retention.period": "90d"}))
    assert cfg["limits_config"]["retention_period"] == "90d"
    msg = render_error(set_values={"loki.retention.period": "31 days"})
    assert "retention/period" in msg, msg


@pytest.mark.parametrize("values", params.profiles())
def test_schema_v13_tsdb(values):
    cfg = _loki_config(render(values))
    periods = cfg["schema_config"]["configs"]
    last = periods[-1]
    assert last["store"] == "tsdb" and last["schema"] == "v13", f"schema_config: {periods}"
    assert last["index"]["period"] == "24h", f"TSDB needs a 24h index period: {last}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(last["from"])), last
    assert "tsdb_shipper" in cfg["storage_config"], cfg["storage_config"]
    assert cfg["limits_config"]["allow_structured_metadata"] is True, "traceID metadata needs it"


@pytest.mark.parametrize("values", params.profiles())
def test_filesystem_storage_by_default(values):
    objs = render(values)
    cfg = _loki_config(objs)
    assert set(cfg["common"]["storage"]) == {"filesystem"}, cfg["common"]["storage"]
    assert cfg["schema_config"]["configs"][-1]["object_store"] == "filesystem"
    assert cfg["compactor"]["delete_request_store"] == "filesystem"
    assert not objs.of_kind("Secret") or all("loki" not in s["metadata"]["name"] for s in objs.of_kind("Secret"))
    sts, c = _container(objs)
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    for path, value in _walk_keys(cfg):
        if isinstance(value, str) and value.startswith("/var/loki"):
            assert mounts.get("/var/loki") == "storage", f"{path}={value} is not on the storage volume"
    assert "env" not in c, f"{ident(sts)}: no environment expected with filesystem storage: {c.get('env')}"


def test_s3_storage_keeps_keys_out_of_the_configmap():
    objs = render(set_values=S3)
    cm_text = yaml.safe_dump(objs.get("ConfigMap", NAME))
    assert SECRET_KEY not in cm_text and ACCESS_KEY not in cm_text, "an S3 key leaked into the ConfigMap"
    cfg = _loki_config(objs)
    s3 = cfg["common"]["storage"]["s3"]
    assert s3["bucketnames"] == "phase5-logs" and s3["endpoint"] == "minio.storage.svc:9000", s3
    assert s3["region"] == "us-east-1" and s3["s3forcepathstyle"] is True, s3
    assert s3["access_key_id"] == "${S3_ACCESS_KEY_ID}", s3
    assert s3["secret_access_key"] == "${S3_SECRET_ACCESS_KEY}", s3
    assert cfg["schema_config"]["configs"][-1]["object_store"] == "s3"
    assert cfg["compactor"]["delete_request_store"] == "s3"

    secret = objs.get("Secret", f"{NAME}-s3")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}, decoded

    sts, c = _container(objs)
    assert "-config.expand-env=true" in c["args"], f"{ident(sts)}: args {c['args']}"
    env = {e["name"]: e for e in c["env"]}
    for name, key in (("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), ("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")):
        assert "value" not in env[name], f"{ident(sts)}: env {name} is a literal"
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": f"{NAME}-s3", "key": key}, env[name]
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in ann, f"{ident(sts)}: a key rotation must roll the pod: {ann}"
    sts_text = yaml.safe_dump(sts)
    assert SECRET_KEY not in sts_text and ACCESS_KEY not in sts_text, "an S3 key leaked into the StatefulSet"


def test_s3_existing_secret():
    objs = render(set_values={"loki.storage.type": "s3", "loki.storage.s3.bucket": "phase5-logs",
                              "loki.storage.s3.existingSecret": "loki-bucket",
                              "loki.storage.s3.accessKeyIdKey": "id",
                              "loki.storage.s3.secretAccessKeyKey": "secret"})
    assert objs.find("Secret", f"{NAME}-s3") is None, "existingSecret given: the chart must not create one"
    _, c = _container(objs)
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert refs == {"S3_ACCESS_KEY_ID": {"name": "loki-bucket", "key": "id"},
                    "S3_SECRET_ACCESS_KEY": {"name": "loki-bucket", "key": "secret"}}, refs


def test_s3_with_iam_role_has_no_static_keys():
    objs = render(set_values={"loki.storage.type": "s3", "loki.storage.s3.bucket": "phase5-logs",
                              "loki.serviceAccount.annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}})
    s3 = _loki_config(objs)["common"]["storage"]["s3"]
    assert "access_key_id" not in s3 and "secret_access_key" not in s3, s3
    _, c = _container(objs)
    assert "env" not in c, c.get("env")


@pytest.mark.parametrize("overrides,message", [
    pytest.param({"loki.storage.type": "s3"}, "bucket is required", id="s3-without-bucket"),
    pytest.param({"loki.storage.type": "s3", "loki.storage.s3.bucket": "logs", "loki.storage.s3.accessKeyId": "x"},
                 "set both accessKeyId and secretAccessKey", id="half-credentials"),
    pytest.param({"loki.storage.type": "gcs"}, "storage/type", id="unknown-store"),
    pytest.param({"loki.storage.s3.endpoint": "https://minio:9000"}, "endpoint", id="endpoint-with-scheme"),
])
def test_bad_storage_settings_fail(overrides, message):
    msg = render_error(set_values=overrides)
    assert message in msg, msg


@pytest.mark.parametrize("values", params.profiles())
def test_statefulset_and_storage(values):
    objs = render(values)
    sts, c = _container(objs)
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["serviceName"] == f"{NAME}-headless", spec
    assert objs.get("Service", f"{NAME}-headless")["spec"]["clusterIP"] == "None"
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates") or []}
    assert ("storage" in claims) != ("storage" in volumes), f"{ident(sts)}: storage volume defined twice or not at all"
    if "storage" in claims:
        size = claims["storage"]["spec"]["resources"]["requests"]["storage"]
        # The size the profile asks for, else the spec's 10Gi default.
        want = "10Gi"
        for f in values:
            want = ((yaml.safe_load(f.read_text()).get("loki") or {}).get("persistence") or {}).get("size", want)
        assert size == want, f"{ident(sts)}: PVC size {size}, want {want}"
    else:
        assert "emptyDir" in volumes["storage"], volumes["storage"]


def test_default_pvc_is_10gi_and_dev_has_none():
    spec = render().get("StatefulSet", NAME)["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi", claim
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"], claim
    from harness import paths
    dev = render((paths.PROFILES_DIR / "dev.yaml",)).get("StatefulSet", NAME)["spec"]
    assert "volumeClaimTemplates" not in dev, "dev profile: no persistence"


@pytest.mark.parametrize("values", params.profiles())
def test_service_contract_and_metrics(values):
    objs = render(values)
    svc = objs.get("Service", NAME)
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    assert ports.get("http-web") == 3100, f"{ident(svc)}: ports {ports}"
    ann = svc["metadata"]["annotations"]
    assert (ann.get("prometheus.io/scrape"), ann.get("prometheus.io/port"), ann.get("prometheus.io/path")) == (
        "true", "3100", "/metrics"), f"{ident(svc)}: annotations {ann}"
    headless = objs.get("Service", f"{NAME}-headless")["metadata"].get("annotations") or {}
    assert "prometheus.io/scrape" not in headless, "the headless Service would double-scrape Loki"
    cfg = _loki_config(objs)
    assert cfg["server"]["http_listen_port"] == 3100


@pytest.mark.parametrize("values", params.profiles())
def test_hardened_pod(values):
    objs = render(values)
    sts, c = _container(objs)
    spec = pod_spec(sts)
    assert spec["automountServiceAccountToken"] is False, f"{ident(sts)}: Loki does not call the API"
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True, sc
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, sc
    assert spec["securityContext"]["fsGroup"] == 10001, spec["securityContext"]
    assert not any("hostPath" in v for v in spec["volumes"]), f"{ident(sts)}: hostPath volume"
    assert re.fullmatch(r"docker\.io/grafana/loki:3\.\d+\.\d+", c["image"]), f"image {c['image']} not a pinned 3.x"
    assert c["resources"]["requests"] and c["resources"]["limits"], c["resources"]
    assert {"-config.file=/etc/loki/loki.yaml", "-target=all"} <= set(c["args"]), c["args"]


def test_config_change_rolls_the_pod():
    def checksum(objs):
        return objs.get("StatefulSet", NAME)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum(render()) != checksum(render(set_values={"loki.retention.period": "720h"}))


@pytest.mark.parametrize("kube_version", params.kube_versions())
def test_s3_variant_valid_for_kubernetes(kube_version):
    """The profiles are validated with filesystem storage (test_unit_render); the S3
    variant's objects (Secret, env from secretKeyRef) must be just as valid."""
    objs = render(set_values=S3, kube_version=kube_version).by_component("loki")
    assert {o["kind"] for o in objs} >= {"StatefulSet", "Secret", "ConfigMap", "Service"}, [ident(o) for o in objs]
    errors = kube_errors(objs, versions=(kube_version,))
    assert not errors, "\n".join(errors)
