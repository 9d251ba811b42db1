"""The alert scenarios of the synthetic workload (Workload.trigger): alert name -> how to make
that alert true on one service, through the workload's knobs or through the API server."""
from .workload_state import CPU_BOOST, SLOW_LATENCY


def _svc(wl, service):
    if service not in wl.state:
        raise KeyError(f"unknown service {service!r}; the workload has {sorted(wl.state)}")
    return wl.state[service]


def _set(**knobs):
    def apply(wl, service):
        st = _svc(wl, service)
        for k, v in knobs.items():
            setattr(st, k, v(st) if callable(v) else v)
        return service
    return apply


def _api(action):
    """A scenario made through the API server (the Stack sets wl.cluster)."""
    def apply(wl, service):
        _svc(wl, service)
        if wl.cluster is None:
            raise RuntimeError(f"{action.__name__}: the workload is not in an API server (Workload.cluster unset)")
        action(wl, service)
        return service
    return apply


def _not_ready(wl, service):
    """The first pod fails its readiness probe (kwok's pod-not-ready stage)."""
    wl.cluster.set_pod_not_ready(wl.namespace, wl.pods(service)[0])


def _beyond_nodes(wl, service):
    """Scale the Deployment beyond what the nodes hold: at most one of its pods fits on a node
    (required anti-affinity), and it gets one replica more than there are schedulable nodes."""
    if not wl.spread:
        raise RuntimeError("DeploymentReplicaMismatch needs Workload(spread=True) (one pod per node)")
    nodes = [n for n in wl.snapshot.nodes if not n["spec"].get("unschedulable")
             and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])]
    wl.cluster.scale(wl.namespace, service, len(nodes) + 1)


def _hpa_at_max(wl, service):
    """The HPA's maximum lowered to the replicas it runs: it can scale no further."""
    wl.cluster.set_hpa_max(wl.namespace, service, wl.state[service].replicas)


SCENARIOS = {
    "HighErrorRate": _set(error_share=0.9),
    "HighResponseTime": _set(latency=SLOW_LATENCY),
    "PodDown": _api(_not_ready),
    "Phase5TargetDown": _set(failing_scrapes=1),
    "Phase5MetricsMissing": _set(exports_metrics=False),
    # Time compression: Prometheus divides a 5m rate by 300 s even when the series is younger,
    # so a pod at 100 % of its limit reads 80 % only after 4 minutes of data. The synthetic
    # cAdvisor counts CPU seconds CPU_BOOST x the limit instead: the ratio crosses 0.8 within
    # ~15 s of the trigger (the threshold maths itself is proven by the promtool rule tests).
    "HighCPUUsage": _set(cpu_ratio=CPU_BOOST),
    "HighMemoryUsage": _set(mem_ratio=0.95),
    "DatabaseConnectionPoolExhausted": _set(db_active=97),
    "KafkaConsumerLag": _set(kafka_lag=25000),
    "PodRestartingTooOften": _set(restart_rate=0.5),
    "DeploymentReplicaMismatch": _api(_beyond_nodes),
    "HPAMaxedOut": _api(_hpa_at_max),
    "AuditLogFailures": _set(audit_error_rate=0.6),
    "ReminderDeliveryFailures": _set(reminder_fail_share=0.9),
}
"""Alert name -> how to make it true on one service. PodDown, DeploymentReplicaMismatch and
HPAMaxedOut go through the API server (readiness, replicas, the HPA's maximum) and reach the
rules only through the kube-state-metrics series derived from its objects; PodRestartingTooOften
sets a restart rate that sync() reports in the pod's status. DiskSpaceLow reads the real
node_exporter (harness.stack), not the workload."""
