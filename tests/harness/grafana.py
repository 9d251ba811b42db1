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


