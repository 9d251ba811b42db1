"""Unit tier: no credential in a ConfigMap, an env literal or a default value, for the
defaults and every profile; every credential the chart takes can come from an existing
Secret. (Each component's tests also plant sentinel credentials and trace where they go.)"""
import re

import pytest

from harness import params, paths
from harness.manifests import containers, ident
from harness.render import render
from harness.schema import load_values

pytestmark = pytest.mark.unit

# Values keys that hold a credential.
CREDENTIAL_KEY = re.compile(r"(?i)^(.*password|secretkey|secretaccesskey|accesskeyid|.*token|.*webhookurl|"
                            r"watchdogurl|routingkey|pagerdutyroutingkey|secretdata)$")
# Config lines that set a credential; the value must be a reference, not a literal.
CONFIG_LINE = re.compile(r"(?i)^\s*[\"']?([\w-]*(password|secret|token|api_?key|access_?key|webhook_url|routing_key)[\w-]*)[\"']?\s*[:=]\s*(.+?)\s*$")
REFERENCE = re.compile(r"^(\"|')?(\$\{[^}]+\}|\$__(file|env)\{[^}]+\}|/[\w./-]+|\"\"|''|null|~)?(\"|')?$")
ENV_NAME = re.compile(r"(?i)(password|secret|token|api_?key|access_?key)")
# Settings whose names match CONFIG_LINE but hold no credential: OAuth2's token endpoint (Grafana's
# [auth.generic_oauth] token_url).
NOT_CREDENTIALS = {"token_url"}


def is_credential(key):
    """A credential value, not the name of the Secret key holding one (passwordKey, ...)."""
    if key.endswith("File") or not CREDENTIAL_KEY.match(key):
        return False
    return not (key.endswith("Key") and CREDENTIAL_KEY.match(key[:-3]))


def walk(values, prefix=""):
    if isinstance(values, dict):
        for k, v in values.items():
            path = f"{prefix}.{k}" if prefix else k
            yield path, k, v, values
            yield from walk(v, path)


def credential_values():
    for sub in paths.COMPONENTS:
        for path, key, value, parent in walk(load_values(paths.SUBCHARTS_DIR / sub)):
            if is_credential(key):
                yield sub, path, key, value


def test_credential_defaults_are_empty():
    found = [(s, p, v) for s, p, k, v in credential_values() if v not in ("", {}, None, [])]
    assert not found, f"credentials with a default value: {found}"


def test_credential_keys_found():
    """The scan must see the chart's credentials (or it could pass by finding none)."""
    paths_found = {f"{s}.{p}" for s, p, *_ in credential_values()}
    for expected in ("alertmanager.secrets.smtpPassword", "grafana.admin.password",
                     "loki.storage.s3.secretAccessKey", "jaeger.storage.auth.password",
                     "prometheus.remoteWrite.secretData", "alertmanager.secrets.pagerdutyRoutingKey",
                     "grafana.admin.secretKey", "loki.storage.s3.accessKeyId"):
        assert expected in paths_found, f"{expected} not recognised as a credential; found {sorted(paths_found)}"


def test_every_credential_accepts_an_existing_secret():
    missing = []
    for sub in paths.COMPONENTS:
        values = load_values(paths.SUBCHARTS_DIR / sub)
        for path, key, value, parent in walk(values):
            if is_credential(key) and "existingSecret" not in parent:
                missing.append(f"{sub}.{path}")
    assert not missing, f"credentials without an existingSecret beside them: {missing}"


# Settings that bring more credentials into play, rendered on top of every profile's scan: Grafana's
# generic OAuth (its client secret comes from an existing Secret, read through $__file{}).
CREDENTIAL_SETTINGS = {
    "grafana-oauth": {"grafana.auth.genericOAuth": {
        "enabled": True, "clientId": "grafana", "existingSecret": "grafana-oauth",
        "authUrl": "https://sso.example.com/authorize", "tokenUrl": "https://sso.example.com/token",
        "apiUrl": "https://sso.example.com/userinfo"}, "grafana.rootUrl": "https://grafana.example.com/"},
}


# The credential settings a scan must meet in the ConfigMaps (or it could pass by finding none).
CREDENTIAL_LINES = {"grafana-oauth": "client_secret"}


@pytest.mark.parametrize("values,settings", [pytest.param(p.values[0], None, id=p.id) for p in params.profiles()] + [
    pytest.param((), settings, id=name) for name, settings in CREDENTIAL_SETTINGS.items()])
def test_no_credential_literal_in_configmaps_or_env(request, values, settings):
    problems, seen = [], set()
    for obj in render(values, settings):
        if obj["kind"] == "ConfigMap":
            for key, body in (obj.get("data") or {}).items():
                for n, line in enumerate(str(body).splitlines(), 1):
                    m = CONFIG_LINE.match(line)
                    if m:
                        seen.add(m.group(1).lower())
                    if m and m.group(1).lower() not in NOT_CREDENTIALS \
                            and not m.group(1).lower().endswith(("_file", "file", "key_id_key", "passwordkey")) \
                            and not REFERENCE.match(m.group(3)):
                        problems.append(f"{ident(obj)} {key}:{n}: {line.strip()}")
        for c in containers(obj):
            for env in c.get("env") or []:
                if "value" in env and ENV_NAME.search(env["name"]) and env["value"] and not env["name"].endswith("__FILE"):
                    problems.append(f"{ident(obj)} {c['name']}: env {env['name']} is a literal")
    assert not problems, "\n".join(problems)
    expected = CREDENTIAL_LINES.get(request.node.callspec.id)
    assert expected is None or expected in seen, f"the scan met no {expected} setting; credential lines {sorted(seen)}"
