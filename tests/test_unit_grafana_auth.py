"""Unit tier: who gets into Grafana (issue 30). Generic OAuth / OIDC from values with the client
secret from an existing Secret only, the public URL the provider redirects to, anonymous access
off and refused above Viewer, and the rendered grafana.ini held to Grafana 13's documented keys.

Grafana cannot run here (AGPL, not built), so these tests use a stand-in: what the rendered
grafana.ini says is checked against the keys and value syntaxes the pinned Grafana version documents
(harness/grafana.py DOCUMENTED_INI, recorded from Grafana 13's configuration reference), not against
a running Grafana."""
import re

import pytest

from harness import grafana as gf
from harness.render import render, render_error

pytestmark = pytest.mark.unit

OAUTH = {
    "enabled": True,
    "name": "Corp SSO",
    "clientId": "grafana-phase5",
    "existingSecret": "grafana-oauth",
    "clientSecretKey": "client-secret",
    "authUrl": "https://sso.example.com/oauth2/authorize",
    "tokenUrl": "https://sso.example.com/oauth2/token",
    "apiUrl": "https://sso.example.com/oauth2/userinfo",
    "scopes": ["openid", "email", "profile", "groups"],
    "roleAttributePath": "contains(groups[*], 'sre') && 'Admin' || 'Viewer'",
}
INGRESS = {"enabled": True, "hosts": ["grafana.example.com"], "tls": [{"secretName": "grafana-tls"}]}
OAUTH_ON = {"grafana.auth.genericOAuth": OAUTH, "grafana.ingress": INGRESS}


@pytest.fixture(scope="module")
def oauth_objs():
    return render(set_values=OAUTH_ON)


def _volumes(objs):
    return {v["name"]: v for v in gf.deployment(objs)["spec"]["template"]["spec"]["volumes"]}


# ---------------------------------------------------------------- generic OAuth

def test_generic_oauth_section_from_values(oauth_objs):
    ini = gf.grafana_ini(oauth_objs)
    assert ini.has_section("auth.generic_oauth"), f"no [auth.generic_oauth]; sections {ini.sections()}"
    got = dict(ini["auth.generic_oauth"])
    want = {
        "enabled": "true", "name": "Corp SSO", "client_id": "grafana-phase5",
        "client_secret": "$__file{/etc/grafana/secrets/oauth/client-secret}",
        "auth_url": OAUTH["authUrl"], "token_url": OAUTH["tokenUrl"], "api_url": OAUTH["apiUrl"],
        "scopes": "openid email profile groups", "role_attribute_path": OAUTH["roleAttributePath"],
        "role_attribute_strict": "false", "allow_sign_up": "true", "use_pkce": "true",
    }
    assert got == want, f"[auth.generic_oauth] {got}"
    # The provider redirects to <root_url>login/generic_oauth: root_url from the Ingress host.
    assert ini["server"]["root_url"] == "https://grafana.example.com/"


def test_generic_oauth_off_by_default():
    ini = gf.grafana_ini(render())
    assert not ini.has_section("auth.generic_oauth"), dict(ini["auth.generic_oauth"])
    assert "oauth-secret" not in _volumes(render())


def test_root_url_value_wins_over_the_ingress():
    objs = render(set_values={**OAUTH_ON, "grafana.rootUrl": "https://ops.example.com/grafana/"})
    assert gf.grafana_ini(objs)["server"]["root_url"] == "https://ops.example.com/grafana/"
    objs = render(set_values={"grafana.auth.genericOAuth": OAUTH, "grafana.rootUrl": "https://g.example.com/"})
    assert gf.grafana_ini(objs)["server"]["root_url"] == "https://g.example.com/"


def test_oauth_without_a_public_url_fails():
    msg = render_error(set_values={"grafana.auth.genericOAuth": OAUTH})
    assert "grafana.auth.genericOAuth.enabled" in msg and "grafana.rootUrl" in msg, msg


def test_client_secret_reaches_grafana_only_through_the_existing_secret(oauth_objs):
    """The client secret is a file of the user's Secret, mounted read-only where grafana.ini's
    $__file{} reads it; no env variable and no other volume carries it, the chart makes no Secret of it."""
    ini = gf.grafana_ini(oauth_objs)
    m = gf.FILE_REFERENCE.match(ini["auth.generic_oauth"]["client_secret"])
    assert m, f"client_secret is not a $__file{{}} reference: {ini['auth.generic_oauth']['client_secret']!r}"
    directory, key = m.group(1).rsplit("/", 1)
    mounts = {mt["mountPath"]: mt for mt in gf.container(oauth_objs)["volumeMounts"]}
    assert directory in mounts and mounts[directory].get("readOnly"), f"{directory} not mounted read-only"
    vol = _volumes(oauth_objs)[mounts[directory]["name"]]
    assert vol["secret"]["secretName"] == "grafana-oauth", vol
    assert vol["secret"]["items"] == [{"key": "client-secret", "path": key}], vol
    # Only Grafana's container mounts it; no env var names or reads it.
    pod = gf.deployment(oauth_objs)["spec"]["template"]["spec"]
    for c in pod["containers"]:
        for e in c.get("env") or []:
            assert "OAUTH" not in e["name"] and "grafana-oauth" not in str(e.get("valueFrom", "")), \
                f"{c['name']}: env {e} carries the OAuth client secret"
        if c["name"] != "grafana":
            assert mounts[directory]["name"] not in {v["name"] for v in c.get("volumeMounts") or []}
    assert oauth_objs.find("Secret", "grafana-oauth") is None, "the chart renders the user's Secret"


def test_client_secret_key_follows_the_value():
    objs = render(set_values={**OAUTH_ON, "grafana.auth.genericOAuth.clientSecretKey": "oidc.secret"})
    assert gf.grafana_ini(objs)["auth.generic_oauth"]["client_secret"] == "$__file{/etc/grafana/secrets/oauth/oidc.secret}"
    assert _volumes(objs)["oauth-secret"]["secret"]["items"] == [{"key": "oidc.secret", "path": "oidc.secret"}]


def test_oauth_change_rolls_the_pod(oauth_objs):
    """grafana.ini is read at start: turning OAuth on changes the pod template's config checksum."""
    on = gf.deployment(oauth_objs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    off = gf.deployment(render(set_values={"grafana.ingress": INGRESS}))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert on != off


@pytest.mark.parametrize("missing", ["clientId", "existingSecret", "authUrl", "tokenUrl", "apiUrl"])
def test_enabled_oauth_without_a_required_value_is_refused(missing):
    msg = render_error(set_values={**OAUTH_ON, f"grafana.auth.genericOAuth.{missing}": ""})
    assert f"genericOAuth/{missing}" in msg or f"genericOAuth.{missing}" in msg, msg


@pytest.mark.parametrize("key,value", [
    ("clientSecret", "s3cr3t-in-values"),          # the secret itself is not a value
    ("name", "OAuth\nclient_secret = leaked"),     # no second grafana.ini line through a value
    ("roleAttributePath", "'Admin'\n[auth.anonymous]"),
    ("authUrl", "ftp://sso.example.com/authorize"),
    ("scopes", ["openid email"]),
])
def test_bad_oauth_values_are_refused(key, value):
    msg = render_error(set_values={**OAUTH_ON, f"grafana.auth.genericOAuth.{key}": value})
    assert key in msg, msg


def test_client_secret_through_grafana_ini_values_is_refused():
    msg = render_error(set_values={"grafana.grafanaIni": {"auth.generic_oauth": {"client_secret": "s3cr3t-value"}}})
    assert "client_secret" in msg, msg


# ---------------------------------------------------------------- anonymous access

def test_anonymous_access_is_explicitly_off():
    ini = gf.grafana_ini(render())
    assert ini["auth.anonymous"]["enabled"] == "false", dict(ini["auth.anonymous"])


def test_anonymous_viewer_renders():
    ini = gf.grafana_ini(render(set_values={"grafana.auth.anonymous.enabled": True}))
    assert dict(ini["auth.anonymous"]) == {"enabled": "true", "org_name": "Main Org.", "org_role": "Viewer",
                                          "hide_version": "true"}


@pytest.mark.parametrize("role", ["Editor", "Admin"])
def test_anonymous_above_viewer_is_refused(role):
    msg = render_error(set_values={"grafana.auth.anonymous": {"enabled": True, "orgRole": role}})
    assert "grafana.auth.anonymous" in msg and role in msg, msg


@pytest.mark.parametrize("settings,where", [
    ({"grafana.grafanaIni": {"auth.anonymous": {"enabled": True, "org_role": "Admin"}}}, "grafana.grafanaIni.auth.anonymous"),
    ({"grafana.auth.anonymous.enabled": True, "grafana.grafanaIni": {"auth.anonymous": {"org_role": "Editor"}}},
     "grafana.grafanaIni.auth.anonymous"),
    ({"grafana.extraEnv": [{"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "true"},
                           {"name": "GF_AUTH_ANONYMOUS_ORG_ROLE", "value": "Admin"}]}, "grafana.extraEnv"),
], ids=["grafanaIni", "grafanaIni-role-over-values", "extraEnv"])
def test_anonymous_above_viewer_through_overrides_is_refused(settings, where):
    """grafanaIni and extraEnv become GF_* variables, which win over grafana.ini: the check reads them too."""
    msg = render_error(set_values=settings)
    assert where in msg, msg


def test_a_role_without_anonymous_access_renders():
    render(set_values={"grafana.grafanaIni": {"auth.anonymous": {"org_role": "Admin"}}})
    render(set_values={"grafana.auth.anonymous.orgRole": "Admin"})


# ---------------------------------------------------------------- stand-in: Grafana 13's documented keys

@pytest.mark.parametrize("settings", [{}, {**OAUTH_ON, "grafana.auth.anonymous.enabled": True}],
                         ids=["defaults", "oauth-and-anonymous"])
def test_rendered_grafana_ini_uses_only_documented_keys(settings):
    """Stand-in for Grafana (it cannot run here): every section and key the chart writes is one the
    pinned Grafana major documents (an undocumented key is ignored by Grafana, silently)."""
    objs = render(set_values=settings)
    tag = gf.container(objs)["image"].rsplit(":", 1)[1]
    major = tag.split(".")[0]
    assert major in gf.DOCUMENTED_INI, f"Grafana {tag}: its documented grafana.ini keys are not recorded"
    documented = gf.DOCUMENTED_INI[major]
    ini = gf.grafana_ini(objs)
    problems = [f"[{s}] is not a section Grafana {major} documents" for s in ini.sections() if s not in documented]
    problems += [f"[{s}] {k}" for s in ini.sections() if s in documented for k in ini[s] if k not in documented[s]]
    assert not problems, f"grafana.ini keys Grafana {major} does not document:\n" + "\n".join(problems)
    if ini.has_section("auth.generic_oauth"):
        missing = gf.OAUTH_REQUIRED - set(ini["auth.generic_oauth"])
        assert not missing, f"[auth.generic_oauth] lacks the required {sorted(missing)}"

