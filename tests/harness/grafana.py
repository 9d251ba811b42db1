"""Read the Grafana subchart's rendered objects the way Grafana reads them."""
import configparser
import re

import yaml


# Grafana expands these in provisioning files before it parses them: $$ is a literal $,
# $__file{..}/$__env{..}/$__vault{..} are providers, $VAR / ${VAR} are environment variables.
_EXPAND = re.compile(r"\$\$|\$__(?:file|env|vault)\{[^}]*\}|\$\{([^}]*)\}|\$(\w+)")


def grafana_expand(text, env=None):
    """What Grafana's provisioning sees after its variable expansion (env: the process
    environment; unset variables become empty, as in Grafana)."""
    env = env or {}

    def repl(m):
        tok = m.group(0)
        if tok == "$$":
            return "$"
        if tok.startswith("$__") and "{" in tok:
            return tok  # a provider reference: resolved at runtime, kept as is here
        return env.get(m.group(1) or m.group(2), "")

    return _EXPAND.sub(repl, text)


def fullname(release="p5"):
    return f"{release}-grafana"


def configmap(objs, release="p5"):
    return objs.get("ConfigMap", fullname(release))


def datasources(objs, release="p5", expand=True):
    """{uid: datasource} from the rendered provisioning file (after Grafana's expansion)."""
    text = configmap(objs, release)["data"]["datasources.yaml"]
    doc = yaml.safe_load(grafana_expand(text) if expand else text)
    return {d["uid"]: d for d in doc["datasources"]}


def providers(objs, release="p5"):
    text = configmap(objs, release)["data"]["dashboard-providers.yaml"]
    return yaml.safe_load(grafana_expand(text))["providers"]


def grafana_ini(objs, release="p5"):
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(configmap(objs, release)["data"]["grafana.ini"])
    return cp


def deployment(objs, release="p5"):
    return objs.get("Deployment", fullname(release))


def container(objs, release="p5"):
    spec = deployment(objs, release)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "grafana")




# Grafana cannot run here (AGPL, not built): this table is the stand-in for it. The grafana.ini keys
# the pinned Grafana major documents, per section, for every section the chart renders: the
# "Configure Grafana" reference (grafana.com/docs/grafana/v13.0/setup-grafana/configure-grafana/), the
# "Configure anonymous access" page ([auth.anonymous]) and the "Configuration options" table of
# "Configure Generic OAuth authentication" ([auth.generic_oauth],
# grafana.com/docs/grafana/v13.0/setup-grafana/configure-access/configure-authentication/generic-oauth/),
# recorded from Grafana's docs sources. A key Grafana does not document is silently ignored by it,
# so a typo would switch nothing on: test_unit_grafana_auth holds the rendered file to this table.
DOCUMENTED_INI = {
    "13": {
        "paths": {"data", "temp_data_lifetime", "logs", "plugins", "provisioning"},
        "server": {"protocol", "http_addr", "http_port", "domain", "enforce_domain", "root_url",
                   "serve_from_sub_path", "router_logging", "static_root_path", "enable_gzip",
                   "cert_file", "cert_key", "socket", "cdn_url", "read_timeout"},
        "database": {"type", "host", "name", "user", "password", "url", "ssl_mode", "path", "wal",
                     "max_idle_conn", "max_open_conn", "conn_max_lifetime", "log_queries", "cache_mode"},
        "security": {"disable_initial_admin_creation", "admin_user", "admin_password", "admin_email",
                     "secret_key", "disable_gravatar", "data_source_proxy_whitelist",
                     "disable_brute_force_login_protection", "cookie_secure", "cookie_samesite",
                     "allow_embedding", "strict_transport_security", "strict_transport_security_max_age_seconds",
                     "strict_transport_security_preload", "strict_transport_security_subdomains",
                     "x_content_type_options", "x_xss_protection", "content_security_policy",
                     "content_security_policy_template"},
        "users": {"allow_sign_up", "allow_org_create", "auto_assign_org", "auto_assign_org_id",
                  "auto_assign_org_role", "verify_email_enabled", "login_hint", "password_hint",
                  "default_theme", "default_language", "home_page", "viewers_can_edit",
                  "user_invite_max_lifetime_duration", "hidden_users"},
        "auth.anonymous": {"enabled", "org_name", "org_role", "hide_version", "device_limit"},
        "auth.generic_oauth": {
            "enabled", "name", "icon", "client_id", "client_secret", "auth_url", "token_url", "api_url",
            "auth_style", "scopes", "empty_scopes", "allow_sign_up", "auto_login", "login_prompt",
            "id_token_attribute_name", "login_attribute_path", "name_attribute_path",
            "email_attribute_path", "email_attribute_name", "role_attribute_path",
            "role_attribute_strict", "skip_org_role_sync", "org_attribute_path", "org_mapping",
            "allow_assign_grafana_admin", "groups_attribute_path", "allowed_groups",
            "allowed_organizations", "allowed_domains", "team_ids", "team_ids_attribute_path",
            "teams_url", "tls_skip_verify_insecure", "tls_client_cert", "tls_client_key",
            "tls_client_ca", "use_pkce", "use_refresh_token", "signout_redirect_url"},
        "snapshots": {"enabled", "external_enabled", "external_snapshot_url", "external_snapshot_name",
                      "public_mode"},
        "analytics": {"reporting_enabled", "check_for_updates", "check_for_plugin_updates",
                      "feedback_links_enabled", "google_analytics_ua_id"},
        "news": {"news_feed_enabled"},
        "log": {"mode", "level", "filters"},
        "log.console": {"level", "format"},
        "metrics": {"enabled", "interval_seconds", "disable_total_stats", "basic_auth_username",
                    "basic_auth_password"},
        "dashboards": {"versions_to_keep", "min_refresh_interval", "default_home_dashboard_path"},
        "unified_alerting": {"enabled", "disabled_orgs", "admin_config_poll_interval",
                             "alertmanager_config_poll_interval", "evaluation_timeout", "max_attempts",
                             "min_interval"},
    },
}
# Required in [auth.generic_oauth] (the "Required: Yes" rows of that table).
OAUTH_REQUIRED = {"client_id", "client_secret", "auth_url", "token_url", "api_url"}
# The value syntaxes of a grafana.ini setting Grafana expands ("Variable expansion" in Configure
# Grafana): $__file{<path>} reads a file and trims the whitespace around its contents.
FILE_REFERENCE = re.compile(r"^\$__file\{(/[^}]+)\}$")
