"""A small evaluator of Kubernetes NetworkPolicy semantics, to test rendered policies
without a cluster: is a connection from one endpoint to another allowed?

An endpoint is a pod (labels + namespace) or an external IP. A pod selected by a policy
of a direction (policyTypes) is isolated in that direction and only the union of those
policies' rules lets traffic through; a pod no policy selects is open. A connection
needs the source's egress and the destination's ingress to allow it.
"""
import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    labels: dict
    namespace: str = "monitoring"
    namespace_labels: dict = field(default_factory=dict)
    ip: str = "10.244.0.10"

    def __hash__(self):
        return hash((tuple(sorted(self.labels.items())), self.namespace))


@dataclass(frozen=True)
class External:
    ip: str


def _matches(selector, labels):
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer, policy_ns, other):
    if "ipBlock" in peer:
        ip = other.ip
        block = peer["ipBlock"]
        net = ipaddress.ip_network(block["cidr"])
        if ipaddress.ip_address(ip) not in net:
            return False
        return not any(ipaddress.ip_address(ip) in ipaddress.ip_network(e) for e in block.get("except") or [])
    if isinstance(other, External):
        return False
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is None:
        ns_ok = other.namespace == policy_ns
    else:
        ns_ok = _matches(ns_sel, {**other.namespace_labels, "kubernetes.io/metadata.name": other.namespace})
    pod_ok = True if pod_sel is None else _matches(pod_sel, other.labels)
    return ns_ok and pod_ok


def _port_matches(ports, port, protocol):
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        end = p.get("endPort", p["port"])
        if p["port"] <= port <= end:
            return True
    return False


def _direction_allows(policies, pod, other, port, protocol, direction):
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies
                 if p["metadata"].get("namespace", "monitoring") == pod.namespace
                 and _matches(p["spec"]["podSelector"], pod.labels)
                 and direction in (p["spec"].get("policyTypes") or ["Ingress"])]
    if not selecting:
        return True
    for pol in selecting:
        ns = pol["metadata"].get("namespace", "monitoring")
        for rule in pol["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, ns, other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(policies, src, dst, port, protocol="TCP"):
    """Would `src` reach `dst` on port/protocol under these policies?"""
    egress_ok = isinstance(src, External) or _direction_allows(policies, src, dst, port, protocol, "Egress")
    ingress_ok = isinstance(dst, External) or _direction_allows(policies, dst, src, port, protocol, "Ingress")
    return egress_ok and ingress_ok
