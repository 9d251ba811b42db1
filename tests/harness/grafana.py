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


class FakeKubeAPI:
    """A minimal Kubernetes API on 127.0.0.1 serving given Secrets, so that
    `helm template --dry-run=server` runs the chart's `lookup` as an upgrade would.

        with FakeKubeAPI({("monitoring", "p5-grafana"): secret_dict}) as api:
            subprocess.run([helm, "template", ..., "--dry-run=server"], env=api.env())
    """

    def __init__(self, secrets, tmp_path):
        self.secrets = dict(secrets)
        self.tmp_path = tmp_path
        self.requests = []

    def __enter__(self):
        import http.server
        import json
        import threading

        api = self
        resources = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
            {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
             "verbs": ["get", "list"]}]}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                api.requests.append(path)
                parts = path.strip("/").split("/")
                body, code = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": "NotFound", "code": 404}, 404
                if path == "/version":
                    body, code = {"major": "1", "minor": "37", "gitVersion": "v1.37.0"}, 200
                elif path == "/api/v1":
                    body, code = resources, 200
                elif len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
                    found = api.secrets.get((parts[3], parts[5]))
                    if found is not None:
                        body, code = found, 200
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        port = self.server.server_address[1]
        self.kubeconfig = self.tmp_path / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: fake, user: {token: fake}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\n"
            "current-context: fake\n")
        return self

    def env(self):
        import os
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
