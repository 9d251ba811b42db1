"""What the e2e stack (harness.stack) changes in the rendered Prometheus and Alertmanager
configuration to run them on 127.0.0.1, and nothing else; each change is recorded in words in a
Swaps list (Stack.swaps; the numbered list with reasons is the docstring of harness.stack)."""
import copy
import dataclasses
import re
import urllib.parse
from pathlib import Path


class Swaps(list):
    """Every swap made in a run, each once, in the order made."""

    def add(self, what):
        if what not in self:
            self.append(what)


@dataclasses.dataclass
class Local:
    """Where the rendered configuration is pointed: the local API server, the pod network's
    proxy, the local Prometheus and Alertmanager, and the shortened intervals."""
    api_server: str
    proxy_url: str
    prom_port: int
    am_port: int
    interval: str
    scrape_interval: str


# ---------------------------------------------------------------------------- alertmanager
def _secret_file(swaps, pod, path, content, what):
    local = pod.local(path)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(content)
    swaps.add(what)

def alertmanager_config(cfg, pod, sinks, swaps):
    """The rendered alertmanager.yaml with every receiver and credential file pointed at the
    local sinks (swaps 8 and 9); credential files written under the pod's root."""
    cfg = copy.deepcopy(cfg)
    g = cfg.setdefault("global", {})
    s = sinks
    if "slack_api_url_file" in g:
        key = Path(g["slack_api_url_file"]).name
        _secret_file(swaps, pod, g["slack_api_url_file"], s.http_url("slack", key),
                     f"alertmanager: the {key} credential file holds the local Slack sink URL /slack/{key}")
    if "slack_api_url" in g:
        g["slack_api_url"] = s.http_url("slack", "global")
        swaps.add("alertmanager: global slack_api_url -> the local Slack sink")
    if "smtp_smarthost" in g:
        g["smtp_smarthost"] = s.smtp_address
        g["smtp_require_tls"] = False
        swaps.add("alertmanager: smtp_smarthost -> local aiosmtpd, smtp_require_tls -> false")
    for r in cfg.get("receivers") or []:
        name = r["name"]
        for c in r.get("slack_configs") or []:
            if "api_url_file" in c:
                key = Path(c["api_url_file"]).name
                _secret_file(swaps, pod, c["api_url_file"], s.http_url("slack", key),
                             f"alertmanager: the {key} credential file holds the local Slack sink URL /slack/{key}")
            if "app_token_file" in c or "app_token" in c:
                c["app_url"] = s.http_url("slack", "app")
                swaps.add(f"alertmanager: receiver {name} slack app_url (chat.postMessage) -> the Slack sink's /slack/app")
            if "api_url" in c:
                # Inline (operator mode inlines the Secret's value): the sink path is the URL's last
                # segment, so each distinct webhook stays distinct.
                key = urllib.parse.urlsplit(str(c["api_url"])).path.rstrip("/").rsplit("/", 1)[-1] or name
                c["api_url"] = s.http_url("slack", key)
                swaps.add(f"alertmanager: receiver {name} slack api_url -> the Slack sink /slack/<its last path segment>")
        for c in r.get("email_configs") or []:
            if "smarthost" in c:
                c["smarthost"] = s.smtp_address
                swaps.add(f"alertmanager: receiver {name} email smarthost -> local aiosmtpd")
            if "require_tls" in c:
                c["require_tls"] = False
        for c in r.get("pagerduty_configs") or []:
            c["url"] = s.http_url("pagerduty") + f"?receiver={urllib.parse.quote(name)}"
            swaps.add("alertmanager: pagerduty_configs url -> the local PagerDuty sink")
        for c in r.get("webhook_configs") or []:
            key = Path(c.get("url_file", "")).name.replace("-url", "") or name
            url = s.http_url("webhook", key)
            if "url_file" in c:
                _secret_file(swaps, pod, c["url_file"], url,
                                  f"alertmanager: webhook credential file {Path(c['url_file']).name} "
                                  f"holds the local webhook sink URL /webhook/{key}")
            if "url" in c:
                c["url"] = url
                swaps.add(f"alertmanager: receiver {name} webhook url -> /webhook/{key}")
        for kind in set(r) - {"name", "slack_configs", "email_configs", "pagerduty_configs", "webhook_configs"}:
            swaps.add(f"alertmanager: receiver {name} {kind} NOT redirected (no local sink for it)")
    return cfg


# ---------------------------------------------------------------------------- prometheus
def _through_api(job, what, local, swaps):
    """Discovery through the local API server as the chart's Prometheus ServiceAccount, and
    the job's connections through the pod network. Returns False for a job without
    Kubernetes discovery."""
    sds = job.get("kubernetes_sd_configs")
    if not sds:
        return False
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    for sd in sds:
        # In a pod, Prometheus finds the API server through KUBERNETES_SERVICE_HOST and reads
        # the mounted token and CA; here the same files, at the local API server.
        sd["api_server"] = local.api_server
        sd["authorization"] = {"credentials_file": f"{sa}/token"}
        sd["tls_config"] = {"ca_file": f"{sa}/ca.crt"}
    job["proxy_url"] = local.proxy_url
    swaps.add(f"prometheus {what}: kubernetes_sd_configs get api_server (the local API server) and the mounted "
               f"ServiceAccount token and CA (in-cluster config reads the same); proxy_url = the pod network")
    return True

def _map_static(job, what, local, swaps):
    for sc in job.get("static_configs") or []:
        new = []
        for tgt in sc.get("targets") or []:
            host, _, port = str(tgt).rpartition(":")
            if port == "9093" and "alertmanager" in host:
                new.append(f"127.0.0.1:{local.am_port}")
                swaps.add(f"prometheus {what}: static target {tgt} -> the local Alertmanager")
            elif port == "9090" and ("prometheus" in host or host in ("localhost", "127.0.0.1")):
                new.append(f"127.0.0.1:{local.prom_port}")
                swaps.add(f"prometheus {what}: static target {tgt} -> the local Prometheus")
            else:
                new.append(tgt)
        sc["targets"] = new

def prometheus_config(cfg, local, swaps):
    """The rendered prometheus.yml with discovery through the local API server, connections
    through the pod network, static targets at the local processes and short intervals
    (swaps 1, 2, 4, 5 and 6; nothing else: the kubelet jobs keep https and their token)."""
    cfg = copy.deepcopy(cfg)
    g = cfg.setdefault("global", {})
    g["evaluation_interval"] = local.interval
    g["scrape_interval"] = g["scrape_timeout"] = local.scrape_interval
    swaps.add(f"prometheus: global evaluation_interval -> {local.interval}, scrape_interval/scrape_timeout -> "
               f"{local.scrape_interval}; per-job intervals removed")
    for key in ("remote_write", "remote_read"):
        if cfg.pop(key, None):
            swaps.add(f"prometheus: {key} removed")
    for job in cfg.get("scrape_configs") or []:
        what = f"job {job.get('job_name')}"
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        # A job's own scheme, tls_config and authorization (the kubelet and cAdvisor jobs' https
        # with the ServiceAccount token) stay as rendered: the stand-in kubelet serves TLS and
        # authorizes the token against the API server (harness.kubelet).
        _through_api(job, what, local, swaps)
        _map_static(job, what, local, swaps)
    for am in (cfg.get("alerting") or {}).get("alertmanagers") or []:
        _through_api(am, "alerting", local, swaps)
        _map_static(am, "alerting", local, swaps)
    return cfg


# ---------------------------------------------------------------------------- alertmanager cluster
@dataclasses.dataclass
class ClusterMember:
    """Member `ordinal` of an Alertmanager cluster on loopback: `ports[i]` is the gossip port
    (TCP and UDP) of the member that plays the StatefulSet's pod i."""
    ordinal: int
    ports: list


def alertmanager_cluster_flags(args, manifests, sts, member, swaps):
    """The rendered Alertmanager arguments of the StatefulSet `sts`'s pod `member.ordinal` with only
    the gossip addresses moved to loopback (swap 10b), each to the port of the pod it names:

      --cluster.listen-address=<any>:<P>                 -> 127.0.0.1:<ports[ordinal]>
      --cluster.advertise-address=$(POD_IP):<P>          -> 127.0.0.1:<ports[ordinal]>
      --cluster.peer=<sts>-<i>.<serviceName>.<ns>.svc:<P> -> 127.0.0.1:<ports[i]>

    A pod's stable DNS name through the headless Service becomes that member's loopback address,
    its own included (in a pod the list names itself too; Alertmanager drops its own address).
    Every other argument, --cluster.peer-timeout among them, is kept as rendered. Refuses
    (ValueError) what would not form a cluster in Kubernetes: a peer that is not a pod of this
    StatefulSet through its headless Service on the gossip port, a replica no peer names, a
    serviceName that is not a headless Service publishing not-ready pods on that port (TCP and
    UDP), or a missing listen/advertise address."""
    md, spec = sts["metadata"], sts["spec"]
    name, ns, replicas = md["name"], md.get("namespace", "default"), int(spec.get("replicas", 1))
    headless = spec.get("serviceName", "")
    flags = {}
    for a in args:
        key, _, value = a.partition("=")
        flags.setdefault(key, []).append(value)
    listen = (flags.get("--cluster.listen-address") or [""])[-1]
    advertise = (flags.get("--cluster.advertise-address") or [""])[-1]
    if not listen or not advertise:
        raise ValueError(f"{name}: rendered without --cluster.listen-address/--cluster.advertise-address "
                         f"({listen!r}, {advertise!r}): no gossip")
    port = listen.rsplit(":", 1)[-1]
    if advertise.rsplit(":", 1)[-1] != port or advertise.rsplit(":", 1)[0] != "$(POD_IP)":
        raise ValueError(f"{name}: advertises {advertise!r}, not the pod's IP on the gossip port {port}")
    svc = manifests.get("Service", headless)
    svc_ports = {(p.get("protocol", "TCP"), str(p["port"])) for p in svc["spec"].get("ports") or []}
    if (svc["spec"].get("clusterIP") != "None" or not svc["spec"].get("publishNotReadyAddresses")
            or not {("TCP", port), ("UDP", port)} <= svc_ports):
        raise ValueError(f"{name}: serviceName {headless} is not a headless Service publishing not-ready pods "
                         f"on {port} TCP and UDP: {svc['spec']}")
    peer = re.compile(rf"^{re.escape(name)}-(\d+)\.{re.escape(headless)}\.{re.escape(ns)}\.svc:{port}$")
    named = []
    out = []
    for a in args:
        key, _, value = a.partition("=")
        if key in ("--cluster.listen-address", "--cluster.advertise-address"):
            a = f"{key}=127.0.0.1:{member.ports[member.ordinal]}"
        elif key == "--cluster.peer":
            m = peer.match(value)
            if not m or int(m.group(1)) >= replicas:
                raise ValueError(f"{name}: --cluster.peer={value} is not one of its {replicas} pods through "
                                 f"the headless Service {headless} on port {port}")
            named.append(int(m.group(1)))
            a = f"{key}=127.0.0.1:{member.ports[int(m.group(1))]}"
        out.append(a)
    if sorted(named) != list(range(replicas)):
        raise ValueError(f"{name}: --cluster.peer names pods {sorted(named)}, not each of its {replicas} replicas once")
    swaps.add("alertmanager cluster (each of the StatefulSet's replicas runs): --cluster.listen-address and "
              "--cluster.advertise-address -> 127.0.0.1:<its gossip port>, each --cluster.peer "
              "<statefulset>-<i>.<headless service>.<namespace>.svc:<port> -> 127.0.0.1:<gossip port of member i>; "
              "every other --cluster.* flag as rendered")
    return out
