"""What the synthetic Phase 5 workload is (harness.workload): its services and namespace, the
exporters of its data tier, the limits and latency profiles of its pods, the knobs of one
service (ServiceState, healthy by default) and its counters (integrals of the current rates)."""
import dataclasses
import threading
import time

PHASE5_SERVICES = ("backend", "frontend", "notification-agent", "recurring-task-agent",
                   "audit-agent", "reminder-agent")
NAMESPACE = "phase5-prod"   # the chart scrapes namespaces matching phase5.namespaceRegex ("phase5-.*")
CONSUMER_TOPICS = {  # consumer group -> topics (the agents read the task events)
    "notification-agent": ("reminders",),
    "recurring-task-agent": ("task-events",),
    "audit-agent": ("task-events", "audit-events"),
    "reminder-agent": ("reminders",),
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Cumulative share of requests at or below each bucket bound (then +Inf = 1.0).
FAST_LATENCY = (0.05, 0.2, 0.45, 0.8, 0.97, 0.995, 0.999, 1.0, 1.0, 1.0, 1.0)   # p95 ~ 0.1s
SLOW_LATENCY = (0.0, 0.0, 0.0, 0.01, 0.02, 0.05, 0.1, 0.3, 0.8, 0.97, 1.0)      # p95 ~ 5s
CPU_LIMIT = 0.5           # cores per container
MEM_LIMIT = 512 * 2**20   # bytes per container
CPU_BOOST = 20.0          # HighCPUUsage scenario: CPU seconds per second, in units of the limit


@dataclasses.dataclass
class ServiceState:
    """Knobs of one Phase 5 Deployment; the baseline is healthy."""
    replicas: int = 2
    req_rate: float = 5.0            # requests/s per pod
    error_share: float = 0.005       # share of 5xx
    latency: tuple = FAST_LATENCY
    db_active: int = 12
    db_max: int = 100
    kafka_lag: int = 20
    audit_error_rate: float = 0.0    # audit_log_errors_total per second per pod
    reminder_fail_share: float = 0.01
    cpu_ratio: float = 0.2           # of the CPU limit
    mem_ratio: float = 0.35          # of the memory limit
    restart_rate: float = 0.0        # container restarts per second (pod 0)
    failing_scrapes: int = 0         # the first N pods are Ready but their /metrics answers 503
    exports_metrics: bool = True     # False: /metrics answers 200 with none of the application series
    kind: str = "Deployment"         # or "StatefulSet" (pods <name>-0, -1, ...; no app targets)
    # An exemplar on the latency histogram (OpenMetrics exposition only), as an instrumented
    # service attaches the trace id of a request it observed: (trace id, observed seconds), or None.
    exemplar: tuple = None


class _Counters:
    """Counters as integrals of rates: bump(key, rate) adds rate * elapsed since last call."""

    def __init__(self):
        self._v = {}
        self._lock = threading.Lock()

    def value(self, key, rate, start=0.0):
        now = time.monotonic()
        with self._lock:
            v, t = self._v.get(key, (start, now))
            v += max(rate, 0.0) * (now - t)
            self._v[key] = (v, now)
            return v


EXPORTERS = (("postgres", "postgres-exporter", 9187), ("redis", "redis-exporter", 9121),
             ("kafka", "kafka-exporter", 9308))
APP_PORT = 8000
HPA_MAX = 6
