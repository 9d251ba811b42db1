"""The kubelet stand-in's three metric pages: /metrics/cadvisor (cAdvisor's container and machine
families), /metrics (the kubelet's own) and /metrics/probes (its probe workers' counters), per
node, from the pods the API server runs there.

The kubelet is not among the binaries the local control plane builds (kwok plays the nodes), so
these are stand-ins, held to the upstream documentation by tests/test_unit_kubelet_standin.py:

- cAdvisor: the families docs/storage/prometheus.md documents for the cAdvisor the pinned
  Kubernetes vendors (tools.versions kubernetes v1.37.2 -> github.com/google/cadvisor/lib
  v0.60.5), with the label names of its source (lib/metrics/prometheus.go: the base labels the
  kubelet's containerPrometheusLabelsFunc sets - container, id, image, name, namespace, pod - and
  each family's extraLabels). Only the metric sets the kubelet enables
  (pkg/kubelet/server/server.go includedMetrics: cpu, memory, diskIO, disk, network, app, process,
  oom_event, and the ungated ones) are served; KUBELET_DISABLED lists the documented sets it leaves
  off (cpuLoad, sched, hugetlb, resctrl, cpuset, memory_numa, advtcp, tcp, udp, perf_event,
  referenced_memory, cpu_topology) and `pressure`, which v1.37 adds only when the KubeletPSI gate
  is on and the host has PSI (left off here). Families in the source but not in the docs
  (container_memory_kernel_usage, container_cpu_cfs_burst_*, container_memory_events_*,
  container_memory_total_(in)active_file_bytes, container_fs_io_cost_*, container_creation_time_seconds,
  cadvisor_version_info, container_scrape_error, machine_scrape_error, machine_cpu_books/drawers)
  are not served: the comparison counts documented families only, so the "full output" here is
  a lower bound of a real kubelet's.
- Cgroups reported per node, as a kubelet with the systemd cgroup driver on cgroup v2 and containerd
  reports them: the node's own cgroups (NODE_CGROUPS: /, kubepods.slice and its QoS slices,
  system.slice services; namespace/pod/container empty), and per running pod its pod cgroup
  (container=""), its sandbox (container="POD", the pause image) and each container. Which family
  a cgroup reports (SCOPES): network for the pod cgroup, the sandbox and /; filesystem usage for
  containers and /; ulimits for processes' cgroups (containers and the sandbox); the rest for all.
  container_health_state is not served (only containers with a Docker health check report it).
- kubelet /metrics: the kubelet's stable and beta families of the Kubernetes metrics reference
  for v1.37 (read in its source: pkg/kubelet/metrics, pkg/volume/util/metrics.go, component-base's
  version metric), the alpha ones the chart reads (volume stats) or the harness has served since
  issue 24 (running pods), and the process_/go_ families a Go component serves (client_golang's
  default collectors) plus rest_client_* (client-go). Approximation: the kubelet's other alpha
  families (about a hundred, mostly histograms) and kubernetes_feature_enabled (one series per
  feature gate) are not served, so this page too is a lower bound.
- kubelet /metrics/probes: PROBES below, from the kubelet's source (server.go registers
  process_start_time_seconds, prober_probe_total and prober_probe_duration_seconds there): one
  counter and one histogram per container and probe its pod declares, all probes succeeding.
  The chart does not scrape this page; kube-prometheus-stack does.

Values: the chart-read series (container_cpu_usage_seconds_total, container_memory_working_set_bytes)
come from the caller's `usage(pod, container)` (the workload's scenarios); every other counter
grows at a fixed plausible rate from the stand-in's start, gauges are constants per cgroup.

Entry points: `Kubelet(node).cadvisor(pods, usage=None)` and `.metrics(pods, volumes=())`, both
-> bytes; `cadvisor_series_per_pod(containers)` the number of series one pod adds.
"""
import datetime
import hashlib
import threading
import time

from .manifests import quantity
from .textformat import esc, num

CADVISOR_VERSION = "lib/v0.60.5"          # vendored by k8s.io/kubernetes v1.37.2 (its go.mod)
KUBERNETES_VERSION = "v1.37.2"
BASE_LABELS = ("container", "id", "image", "name", "namespace", "pod")

# name -> (type, metric set ("-": not gated), extra label names): docs/storage/prometheus.md of
# cAdvisor lib/v0.60.5 (names, types, option parameter) and lib/metrics/prometheus*.go (labels).
CADVISOR = {
    "container_blkio_device_usage_total": ("counter", "diskIO", ("device", "major", "minor", "operation")),
    "container_cpu_cfs_periods_total": ("counter", "cpu", ()),
    "container_cpu_cfs_throttled_periods_total": ("counter", "cpu", ()),
    "container_cpu_cfs_throttled_seconds_total": ("counter", "cpu", ()),
    "container_cpu_load_average_10s": ("gauge", "cpuLoad", ()),
    "container_cpu_schedstat_run_periods_total": ("counter", "sched", ()),
    "container_cpu_schedstat_runqueue_seconds_total": ("counter", "sched", ()),
    "container_cpu_schedstat_run_seconds_total": ("counter", "sched", ()),
    "container_cpu_system_seconds_total": ("counter", "cpu", ()),
    "container_cpu_usage_seconds_total": ("counter", "cpu", ("cpu",)),
    "container_cpu_user_seconds_total": ("counter", "cpu", ()),
    "container_file_descriptors": ("gauge", "process", ()),
    "container_fs_inodes_free": ("gauge", "disk", ("device",)),
    "container_fs_inodes_total": ("gauge", "disk", ("device",)),
    "container_fs_io_current": ("gauge", "diskIO", ("device",)),
    "container_fs_io_time_seconds_total": ("counter", "diskIO", ("device",)),
    "container_fs_io_time_weighted_seconds_total": ("counter", "diskIO", ("device",)),
    "container_fs_limit_bytes": ("gauge", "disk", ("device",)),
    "container_fs_reads_bytes_total": ("counter", "diskIO", ("device",)),
    "container_fs_read_seconds_total": ("counter", "diskIO", ("device",)),
    "container_fs_reads_merged_total": ("counter", "diskIO", ("device",)),
    "container_fs_reads_total": ("counter", "diskIO", ("device",)),
    "container_fs_sector_reads_total": ("counter", "diskIO", ("device",)),
    "container_fs_sector_writes_total": ("counter", "diskIO", ("device",)),
    "container_fs_usage_bytes": ("gauge", "disk", ("device",)),
    "container_fs_writes_bytes_total": ("counter", "diskIO", ("device",)),
    "container_fs_write_seconds_total": ("counter", "diskIO", ("device",)),
    "container_fs_writes_merged_total": ("counter", "diskIO", ("device",)),
    "container_fs_writes_total": ("counter", "diskIO", ("device",)),
    "container_health_state": ("gauge", "-", ()),
    "container_hugetlb_failcnt": ("counter", "hugetlb", ("pagesize",)),
    "container_hugetlb_max_usage_bytes": ("gauge", "hugetlb", ("pagesize",)),
    "container_hugetlb_usage_bytes": ("gauge", "hugetlb", ("pagesize",)),
    "container_last_seen": ("gauge", "-", ()),
    "container_llc_occupancy_bytes": ("gauge", "resctrl", ("node_id",)),
    "container_memory_bandwidth_bytes": ("gauge", "resctrl", ("node_id",)),
    "container_memory_bandwidth_local_bytes": ("gauge", "resctrl", ("node_id",)),
    "container_memory_cache": ("gauge", "memory", ()),
    "container_memory_failcnt": ("counter", "memory", ()),
    "container_memory_failures_total": ("counter", "memory", ("failure_type", "scope")),
    "container_memory_file_dirty_bytes": ("gauge", "memory", ()),
    "container_memory_file_writeback_bytes": ("gauge", "memory", ()),
    "container_memory_mapped_file": ("gauge", "memory", ()),
    "container_memory_max_usage_bytes": ("gauge", "memory", ()),
    "container_memory_migrate": ("gauge", "cpuset", ()),
    "container_memory_numa_pages": ("gauge", "memory_numa", ("type", "scope", "node")),
    "container_memory_pgscan_total": ("counter", "memory", ()),
    "container_memory_pgsteal_total": ("counter", "memory", ()),
    "container_memory_rss": ("gauge", "memory", ()),
    "container_memory_swap": ("gauge", "memory", ()),
    "container_memory_usage_bytes": ("gauge", "memory", ()),
    "container_memory_working_set_bytes": ("gauge", "memory", ()),
    "container_memory_workingset_refault_anon_total": ("counter", "memory", ()),
    "container_memory_workingset_refault_file_total": ("counter", "memory", ()),
    "container_network_advance_tcp_stats_total": ("gauge", "advtcp", ("tcp_state",)),
    "container_network_receive_bytes_total": ("counter", "network", ("interface",)),
    "container_network_receive_errors_total": ("counter", "network", ("interface",)),
    "container_network_receive_packets_dropped_total": ("counter", "network", ("interface",)),
    "container_network_receive_packets_total": ("counter", "network", ("interface",)),
    "container_network_tcp6_usage_total": ("gauge", "tcp", ("tcp_state",)),
    "container_network_tcp_usage_total": ("gauge", "tcp", ("tcp_state",)),
    "container_network_transmit_bytes_total": ("counter", "network", ("interface",)),
    "container_network_transmit_errors_total": ("counter", "network", ("interface",)),
    "container_network_transmit_packets_dropped_total": ("counter", "network", ("interface",)),
    "container_network_transmit_packets_total": ("counter", "network", ("interface",)),
    "container_network_udp6_usage_total": ("gauge", "udp", ("udp_state",)),
    "container_network_udp_usage_total": ("gauge", "udp", ("udp_state",)),
    "container_oom_events_total": ("counter", "oom_event", ()),
    "container_perf_events_scaling_ratio": ("gauge", "perf_event", ("cpu", "event")),
    "container_perf_events_total": ("counter", "perf_event", ("cpu", "event")),
    "container_perf_uncore_events_scaling_ratio": ("gauge", "perf_event", ("socket", "event", "pmu")),
    "container_perf_uncore_events_total": ("counter", "perf_event", ("socket", "event", "pmu")),
    "container_processes": ("gauge", "process", ()),
    "container_referenced_bytes": ("gauge", "referenced_memory", ()),
    "container_sockets": ("gauge", "process", ()),
    "container_spec_cpu_period": ("gauge", "-", ()),
    "container_spec_cpu_quota": ("gauge", "-", ()),
    "container_spec_cpu_shares": ("gauge", "-", ()),
    "container_spec_memory_limit_bytes": ("gauge", "-", ()),
    "container_spec_memory_reservation_limit_bytes": ("gauge", "-", ()),
    "container_spec_memory_swap_limit_bytes": ("gauge", "-", ()),
    "container_start_time_seconds": ("gauge", "-", ()),
    "container_tasks_state": ("gauge", "cpuLoad", ("state",)),
    "container_threads": ("gauge", "process", ()),
    "container_threads_max": ("gauge", "process", ()),
    "container_ulimits_soft": ("gauge", "process", ("ulimit",)),
    "machine_cpu_cache_capacity_bytes": ("gauge", "cpu_topology", ("node_id", "core_id", "type", "level")),
    "machine_cpu_cores": ("gauge", "-", ()),
    "machine_cpu_physical_cores": ("gauge", "-", ()),
    "machine_cpu_sockets": ("gauge", "-", ()),
    "machine_dimm_capacity_bytes": ("gauge", "-", ("type",)),
    "machine_dimm_count": ("gauge", "-", ("type",)),
    "machine_memory_bytes": ("gauge", "-", ()),
    "machine_swap_bytes": ("gauge", "-", ()),
    "machine_node_distance": ("gauge", "cpu_topology", ("node_id", "target_node_id")),
    "machine_node_hugepages_count": ("gauge", "cpu_topology", ("node_id", "page_size")),
    "machine_node_memory_capacity_bytes": ("gauge", "cpu_topology", ("node_id",)),
    "machine_nvm_avg_power_budget_watts": ("gauge", "-", ()),
    "machine_nvm_capacity": ("gauge", "-", ("mode",)),
    "machine_thread_siblings_count": ("gauge", "cpu_topology", ("node_id", "core_id", "thread_id")),
}
MACHINE_LABELS = ("boot_id", "machine_id", "system_uuid")
# The metric sets v1.37's kubelet passes to cAdvisor's collectors (server.go includedMetrics).
KUBELET_ENABLED = {"cpu", "memory", "diskIO", "disk", "network", "app", "process", "oom_event", "-"}
KUBELET_DISABLED = {kind for _, kind, _ in CADVISOR.values()} - KUBELET_ENABLED
# Documented and enabled, but not reported for these cgroups: see the module docstring.
NOT_SERVED = {"container_health_state",     # Docker health checks only
              "machine_dimm_capacity_bytes", "machine_dimm_count"}   # only where sysfs edac lists DIMMs
SERVED = {n: v for n, v in CADVISOR.items() if v[1] in KUBELET_ENABLED and n not in NOT_SERVED}

# Which cgroups report a family (by metric set, or by name): node = the node's own cgroups,
# pod = a pod's cgroup (container=""), pause = the sandbox (container="POD"), app = a container.
ALL = frozenset({"node", "pod", "pause", "app"})
SCOPES = {"network": frozenset({"root", "pod", "pause"}), "disk": frozenset({"root", "app"}),
          "container_ulimits_soft": frozenset({"pause", "app"}),
          "container_spec_cpu_quota": frozenset({"pod", "app"})}   # only cgroups with a CPU limit

# Per node cgroup: id (cgroup v2, systemd driver). "/" is the root.
NODE_CGROUPS = ("/", "/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice",
                "/kubepods.slice/kubepods-besteffort.slice", "/system.slice", "/system.slice/kubelet.service",
                "/system.slice/containerd.service", "/user.slice")
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1"
DEVICE = ("/dev/vda", "252", "0")
# Expansions of the extra labels (one series each).
EXPAND = {"cpu": ("total",), "device": (DEVICE[0],), "interface": ("eth0",), "ulimit": ("max_open_files",),
          "failure_type,scope": (("pgfault", "container"), ("pgfault", "hierarchy"),
                                 ("pgmajfault", "container"), ("pgmajfault", "hierarchy")),
          "device,major,minor,operation": tuple(DEVICE + (op,) for op in ("Read", "Write"))}

# kubelet /metrics: name -> (type, label names, stability). HISTOGRAM families serve
# _bucket/_sum/_count.
HISTOGRAM = "histogram"
KUBELET = {
    "kubelet_volume_stats_available_bytes": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_capacity_bytes": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_used_bytes": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_inodes": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_inodes_free": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_inodes_used": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_volume_stats_health_status_abnormal": ("gauge", ("namespace", "persistentvolumeclaim"), "ALPHA"),
    "kubelet_running_pods": ("gauge", (), "ALPHA"),
    "kubelet_node_name": ("gauge", ("node",), "ALPHA"),
    "kubelet_image_volume_requested_total": ("counter", (), "BETA"),
    "kubelet_image_volume_mounted_succeed_total": ("counter", (), "BETA"),
    "kubelet_image_volume_mounted_errors_total": ("counter", (), "BETA"),
    "storage_operation_duration_seconds": (HISTOGRAM, ("volume_plugin", "operation_name", "status", "migrated"), "BETA"),
    "volume_operation_total_seconds": (HISTOGRAM, ("plugin_name", "operation_name"), "BETA"),
    "kubernetes_build_info": ("gauge", ("build_date", "compiler", "git_commit", "git_tree_state", "git_version",
                                        "go_version", "major", "minor", "platform"), "BETA"),
    "rest_client_requests_total": ("counter", ("code", "host", "method"), "ALPHA"),
    "rest_client_request_duration_seconds": (HISTOGRAM, ("host", "verb"), "ALPHA"),
    "process_cpu_seconds_total": ("counter", (), "GO"),
    "process_max_fds": ("gauge", (), "GO"),
    "process_open_fds": ("gauge", (), "GO"),
    "process_resident_memory_bytes": ("gauge", (), "GO"),
    "process_start_time_seconds": ("gauge", (), "GO"),
    "process_virtual_memory_bytes": ("gauge", (), "GO"),
    "process_virtual_memory_max_bytes": ("gauge", (), "GO"),
    "go_goroutines": ("gauge", (), "GO"),
    "go_threads": ("gauge", (), "GO"),
    "go_info": ("gauge", ("version",), "GO"),
    "go_gc_duration_seconds": ("summary", (), "GO"),
    "go_memstats_alloc_bytes": ("gauge", (), "GO"),
    "go_memstats_alloc_bytes_total": ("counter", (), "GO"),
    "go_memstats_heap_alloc_bytes": ("gauge", (), "GO"),
    "go_memstats_heap_idle_bytes": ("gauge", (), "GO"),
    "go_memstats_heap_inuse_bytes": ("gauge", (), "GO"),
    "go_memstats_heap_objects": ("gauge", (), "GO"),
    "go_memstats_heap_released_bytes": ("gauge", (), "GO"),
    "go_memstats_heap_sys_bytes": ("gauge", (), "GO"),
    "go_memstats_last_gc_time_seconds": ("gauge", (), "GO"),
    "go_memstats_mallocs_total": ("counter", (), "GO"),
    "go_memstats_frees_total": ("counter", (), "GO"),
    "go_memstats_sys_bytes": ("gauge", (), "GO"),
    "go_memstats_stack_inuse_bytes": ("gauge", (), "GO"),
    "go_memstats_stack_sys_bytes": ("gauge", (), "GO"),
    "go_memstats_next_gc_bytes": ("gauge", (), "GO"),
    "go_sched_gomaxprocs_threads": ("gauge", (), "GO"),
}
# kubelet /metrics/probes (pkg/kubelet/server/server.go InstallAuthNotRequiredHandlers: a registry
# of its own holding process_start_time_seconds, prober.ProberResults and prober.ProberDuration;
# pkg/kubelet/prober/prober_manager.go for their names, labels and stability; the histogram has
# client_golang's default buckets, no Buckets being set). A worker per container and declared
# probe (startupProbe, readinessProbe, livenessProbe: probe_type Startup / Readiness / Liveness,
# its String()) counts each result it got: a probe that always succeeds has only
# result="successful" and one duration histogram (worker.go doProbe observes successes and
# unknowns, not failures).
PROBES = {
    "prober_probe_total": ("counter", ("probe_type", "result", "container", "pod", "namespace", "pod_uid"), "BETA"),
    "prober_probe_duration_seconds": (HISTOGRAM, ("probe_type", "container", "pod", "namespace"), "ALPHA"),
    "process_start_time_seconds": ("gauge", (), "GO"),
}
PROBE_TYPES = (("startupProbe", "Startup"), ("readinessProbe", "Readiness"), ("livenessProbe", "Liveness"))
DEFAULT_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
REST_CLIENT = (("200", "GET"), ("200", "PATCH"), ("201", "POST"), ("200", "PUT"))
BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
OPS_BUCKETS = (.1, .25, .5, 1, 2.5, 5, 10, 15, 25, 50, 120, 300, 600)


def _container_id(uid, name):
    return hashlib.sha256(f"{uid}/{name}".encode()).hexdigest()


def _pod_cgroup(pod):
    uid = pod["metadata"]["uid"].replace("-", "_")
    qos = (pod.get("status") or {}).get("qosClass", "Burstable")
    if qos == "Guaranteed":
        return f"/kubepods.slice/kubepods-pod{uid}.slice"
    q = qos.lower()
    return f"/kubepods.slice/kubepods-{q}.slice/kubepods-{q}-pod{uid}.slice"


def _labels(names, values):
    return ",".join(f'{n}="{esc(v)}"' for n, v in zip(names, values))


def _served(scope):
    """[(family, type, extra label names, expansion)] a cgroup of `scope` reports."""
    out = []
    for name, (kind, mset, extra) in SERVED.items():
        if not name.startswith("container_"):
            continue
        where = SCOPES.get(name) or SCOPES.get(mset) or ALL
        if scope not in where and not (scope == "root" and "node" in where):
            continue
        if extra:
            exp = EXPAND[",".join(extra)]
            exp = [e if isinstance(e, tuple) else (e,) for e in exp]
        else:
            exp = [()]
        out.append((name, kind, extra, exp))
    return out


_SCOPE_FAMILIES = {s: _served(s) for s in ("root", "node", "pod", "pause", "app")}


def cadvisor_series_per_pod(containers=1):
    """Series /metrics/cadvisor serves for one running pod with `containers` containers."""
    n = lambda s: sum(len(exp) for _, _, _, exp in _SCOPE_FAMILIES[s])     # noqa: E731
    return n("pod") + n("pause") + containers * n("app")


def _gauge_value(name, base, scope, limit_cpu, limit_mem):
    """A plausible constant per cgroup for a gauge that nobody reads."""
    if name == "container_spec_cpu_period":
        return 100000
    if name == "container_spec_cpu_quota":
        return int(limit_cpu * 100000) if limit_cpu else 0
    if name == "container_spec_cpu_shares":
        return 102 if scope != "node" else 1024
    if name == "container_spec_memory_limit_bytes":
        return limit_mem or 0
    if name in ("container_spec_memory_reservation_limit_bytes", "container_spec_memory_swap_limit_bytes"):
        return 0
    if name in ("container_last_seen", "container_start_time_seconds"):
        return base
    if name.startswith("container_fs_limit") or name == "container_fs_inodes_total":
        return 100 * 2**30 if "bytes" in name else 6553600
    if name == "container_fs_inodes_free":
        return 6000000
    if name == "container_fs_usage_bytes":
        return 12 * 2**20
    if name in ("container_processes", "container_threads"):
        return 1 if scope == "pause" else 4
    if name == "container_threads_max":
        return 0
    if name == "container_file_descriptors":
        return 8
    if name == "container_sockets":
        return 2
    if name == "container_ulimits_soft":
        return 1048576
    if name == "container_fs_io_current":
        return 0
    if name.startswith("container_memory_"):
        return 2**20 if scope == "pause" else 8 * 2**20
    return 0


# Counter rates (per second) for the families nobody reads: plausible, and monotonic.
def _rate(name):
    if "bytes" in name:
        return 2048.0
    if "seconds" in name:
        return 0.001
    if "oom" in name or "failcnt" in name or "errors" in name or "dropped" in name:
        return 0.0
    return 1.0


# The series whose values follow the caller's usage (cpu seconds, working set bytes).
_DYNAMIC = {"container_cpu_usage_seconds_total": lambda d: d[0],
            "container_memory_working_set_bytes": lambda d: d[1],
            "container_memory_usage_bytes": lambda d: d[1] * 1.3,
            "container_memory_max_usage_bytes": lambda d: d[1] * 1.3,
            "container_memory_rss": lambda d: d[1] * 0.8}


# cAdvisor refreshes a container's stats every housekeeping interval (the kubelet runs it at 10 s):
# the series nobody reads change that often here too, which keeps a scrape cheap.
HOUSEKEEPING = 10.0


def _counter_line(prefix, rate, t):
    return f"{prefix} {rate * t:.3f}" if rate < 1 else f"{prefix} {int(rate * t)}"


class _Cgroup:
    """One cgroup's series: (name, type, "name{labels}", gauge line or counter rate) split into
    the static ones and the _DYNAMIC ones, with the static lines of the last housekeeping."""

    def __init__(self, entries):
        self.static = [e for e in entries if e[0] not in _DYNAMIC]
        self.dynamic = [e for e in entries if e[0] in _DYNAMIC]
        self.epoch, self.lines = None, {}


class Kubelet:
    """One node's kubelet stand-in. Thread-safe; caches each pod's label strings by uid and
    resourceVersion, so a scrape of an unchanged node only formats values."""

    def __init__(self, node, start=None):
        self.node = node
        self.start = time.time() if start is None else start
        self._t0 = time.monotonic()
        self._cache = {}         # (uid, resourceVersion) -> [(scope, container, _Cgroup)]; ("node", id) -> _Cgroup
        self._static = None      # ((housekeeping, cgroup keys), {family: joined lines of the unread series})
        self._lock = threading.Lock()

    def _cgroup_entries(self, scope, base_labels, limit_cpu=0.0, limit_mem=0):
        lab = _labels(BASE_LABELS, base_labels)
        out = []
        for name, kind, extra, exp in _SCOPE_FAMILIES[scope]:
            if name == "container_spec_cpu_quota" and not limit_cpu:
                continue
            for e in exp:
                prefix = f"{name}{{{lab}{',' + _labels(extra, e) if extra else ''}}}"
                const = (f"{prefix} {num(_gauge_value(name, self.start, scope, limit_cpu, limit_mem))}"
                         if kind == "gauge" else _rate(name))
                out.append((name, kind, prefix, const))
        return _Cgroup(out)

    def _pod_entries(self, pod):
        md, spec = pod["metadata"], pod["spec"]
        key = (md["uid"], md.get("resourceVersion", ""))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ns, name, uid = md["namespace"], md["name"], md["uid"]
        cg = _pod_cgroup(pod)
        cpu_total = mem_total = 0
        apps = []
        for c in spec.get("containers") or []:
            lim = (c.get("resources") or {}).get("limits") or {}
            cpu, mem = quantity(lim["cpu"]) if "cpu" in lim else 0.0, int(quantity(lim["memory"])) if "memory" in lim else 0
            cpu_total, mem_total = cpu_total + cpu, mem_total + mem
            cid = _container_id(uid, c["name"])
            apps.append(("app", c["name"], self._cgroup_entries(
                "app", (c["name"], f"{cg}/cri-containerd-{cid}.scope", c.get("image", ""), cid, ns, name), cpu, mem)))
        pid = _container_id(uid, "POD")
        entries = [("pod", "", self._cgroup_entries("pod", ("", cg, "", "", ns, name), cpu_total, mem_total)),
                   ("pause", "POD", self._cgroup_entries(
                       "pause", ("POD", f"{cg}/cri-containerd-{pid}.scope", PAUSE_IMAGE, pid, ns, name)))] + apps
        self._cache[key] = entries
        return entries

    def cadvisor(self, pods, usage=None):
        """/metrics/cadvisor for the running `pods` of this node. usage(pod, container) ->
        (cpu_seconds_total, working_set_bytes) or None for the stand-in's own values; the pod
        cgroup's values are its containers' sums."""
        t = time.monotonic() - self._t0
        epoch = int(t // HOUSEKEEPING)
        with self._lock:
            cgroups, keep = [], []           # [(cgroup, usage or None)], cache keys in use
            for cg in NODE_CGROUPS:
                key = ("node", cg)
                entries = self._cache.get(key)
                if entries is None:
                    entries = self._cache[key] = self._cgroup_entries("root" if cg == "/" else "node",
                                                                      ("", cg, "", "", "", ""))
                keep.append(key)
                cgroups.append((entries, None))
            for p in pods:
                entries = self._pod_entries(p)
                keep.append((p["metadata"]["uid"], p["metadata"].get("resourceVersion", "")))
                pod_cpu = pod_mem = 0.0
                dyn = {}
                for scope, cname, _ in entries:
                    if scope == "app":
                        got = usage(p, cname) if usage else None
                        if got is None:
                            got = (0.01 * t, 64 * 2**20)
                        dyn[cname] = got
                        pod_cpu, pod_mem = pod_cpu + got[0], pod_mem + got[1]
                dyn[""] = (pod_cpu, pod_mem)
                dyn["POD"] = (0.0001 * t, 2**20)
                cgroups += [(ents, dyn[cname]) for _, cname, ents in entries]
            # The series nobody reads, joined once per housekeeping and set of cgroups.
            page_key = (epoch, tuple(keep))
            if self._static is None or self._static[0] != page_key:
                fams = {name: [] for name in SERVED}
                for cg, _ in cgroups:
                    self._static_lines(cg, epoch)
                    for name, lines in cg.lines.items():
                        fams[name].extend(lines)
                self._static = (page_key, {name: "\n".join(lines) for name, lines in fams.items() if lines})
                for key in set(self._cache) - set(keep):
                    del self._cache[key]
            static = self._static[1]
            dynamic = {name: [] for name in _DYNAMIC}
            for cg, dyn in cgroups:
                for name, kind, prefix, const in cg.dynamic:
                    if dyn is not None:
                        dynamic[name].append(f"{prefix} {num(_DYNAMIC[name](dyn))}")
                    else:
                        dynamic[name].append(_counter_line(prefix, const, t) if kind == "counter" else const)
        out = []
        for name in SERVED:
            parts = ([static[name]] if name in static else []) + dynamic.get(name, [])
            if parts:
                out.append(f"# HELP {name} cAdvisor {CADVISOR_VERSION} stand-in\n# TYPE {name} {SERVED[name][0]}\n")
                out.append("\n".join(parts))
                out.append("\n")
        out.append(self._machine())
        return "".join(out).encode()

    @staticmethod
    def _static_lines(cg, epoch):
        """A cgroup's lines of the series nobody reads as of housekeeping `epoch` (cached: cAdvisor
        refreshes its stats every HOUSEKEEPING seconds)."""
        if cg.epoch != epoch:
            at, lines = epoch * HOUSEKEEPING, {}
            for name, kind, prefix, const in cg.static:
                lines.setdefault(name, []).append(_counter_line(prefix, const, at) if kind == "counter" else const)
            cg.lines, cg.epoch = lines, epoch

    def _machine(self):
        mid = hashlib.md5(self.node.encode()).hexdigest()
        lab = _labels(MACHINE_LABELS, (mid[:8] + "-boot", mid, mid))
        out = []
        for name, value in (("machine_cpu_cores", 4), ("machine_cpu_physical_cores", 2), ("machine_cpu_sockets", 1),
                            ("machine_memory_bytes", 16 * 2**30), ("machine_swap_bytes", 0),
                            ("machine_nvm_avg_power_budget_watts", 0)):
            out.append(f"# HELP {name} cAdvisor stand-in\n# TYPE {name} gauge\n{name}{{{lab}}} {value}\n")
        out.append("# HELP machine_nvm_capacity cAdvisor stand-in\n# TYPE machine_nvm_capacity gauge\n")
        for mode in ("app_direct_mode", "memory_mode"):
            out.append(f'machine_nvm_capacity{{{lab},mode="{mode}"}} 0\n')
        return "".join(out)

    def metrics(self, pods, volumes=()):
        """/metrics: the kubelet's own families (KUBELET). volumes: [(namespace, claim,
        capacity bytes, available bytes)] of the claims mounted by the node's running pods."""
        t = time.monotonic() - self._t0
        out = []

        def fam(name, lines):
            kind = KUBELET[name][0]
            out.append(f"# HELP {name} kubelet {KUBERNETES_VERSION} stand-in\n# TYPE {name} {kind}\n")
            out.extend(line + "\n" for line in lines)
        vl = ("namespace", "persistentvolumeclaim")
        for name, value in (("kubelet_volume_stats_capacity_bytes", lambda c, a: c),
                            ("kubelet_volume_stats_available_bytes", lambda c, a: a),
                            ("kubelet_volume_stats_used_bytes", lambda c, a: c - a),
                            ("kubelet_volume_stats_inodes", lambda c, a: 6553600),
                            ("kubelet_volume_stats_inodes_free", lambda c, a: 6500000),
                            ("kubelet_volume_stats_inodes_used", lambda c, a: 53600),
                            ("kubelet_volume_stats_health_status_abnormal", lambda c, a: 0)):
            fam(name, [f"{name}{{{_labels(vl, (ns, claim))}}} {num(value(cap, avail))}"
                       for ns, claim, cap, avail in volumes])
        fam("kubelet_running_pods", [f"kubelet_running_pods {len(pods)}"])
        fam("kubelet_node_name", [f'kubelet_node_name{{node="{esc(self.node)}"}} 1'])
        for name in ("kubelet_image_volume_requested_total", "kubelet_image_volume_mounted_succeed_total",
                     "kubelet_image_volume_mounted_errors_total"):
            fam(name, [f"{name} 0"])
        ops = [("kubernetes.io/configmap", "volume_mount", "success", "false"),
               ("kubernetes.io/secret", "volume_mount", "success", "false"),
               ("kubernetes.io/projected", "volume_mount", "success", "false"),
               ("kubernetes.io/csi", "volume_mount", "success", "false")]
        fam("storage_operation_duration_seconds",
            _histogram("storage_operation_duration_seconds", KUBELET["storage_operation_duration_seconds"][1], ops,
                       OPS_BUCKETS, len(pods) + 1))
        fam("volume_operation_total_seconds",
            _histogram("volume_operation_total_seconds", ("plugin_name", "operation_name"),
                       [(o[0], o[1]) for o in ops], OPS_BUCKETS, len(pods) + 1))
        fam("kubernetes_build_info", [f"kubernetes_build_info{{{_labels(KUBELET['kubernetes_build_info'][1], ('2026-01-01T00:00:00Z', 'gc', 'stand-in', 'clean', KUBERNETES_VERSION, 'go1.26', '1', '37', 'linux/amd64'))}}} 1"])
        host = "127.0.0.1:6443"
        fam("rest_client_requests_total", [f"rest_client_requests_total{{{_labels(('code', 'host', 'method'), (c, host, m))}}} {num(int(t * 2))}"
                                           for c, m in REST_CLIENT])
        fam("rest_client_request_duration_seconds",
            _histogram("rest_client_request_duration_seconds", ("host", "verb"),
                       [(host, v) for v in ("GET", "PATCH", "POST", "PUT")], BUCKETS, int(t * 2)))
        for name, value in (("process_cpu_seconds_total", 0.02 * t), ("process_max_fds", 1048576),
                            ("process_open_fds", 40), ("process_resident_memory_bytes", 80 * 2**20),
                            ("process_start_time_seconds", int(self.start)),
                            ("process_virtual_memory_bytes", 2 * 2**30),
                            ("process_virtual_memory_max_bytes", 2**64 - 1),
                            ("go_goroutines", 300), ("go_threads", 20), ("go_sched_gomaxprocs_threads", 4),
                            ("go_memstats_alloc_bytes", 30 * 2**20), ("go_memstats_alloc_bytes_total", 2**20 * t),
                            ("go_memstats_heap_alloc_bytes", 30 * 2**20), ("go_memstats_heap_idle_bytes", 10 * 2**20),
                            ("go_memstats_heap_inuse_bytes", 35 * 2**20), ("go_memstats_heap_objects", 200000),
                            ("go_memstats_heap_released_bytes", 5 * 2**20), ("go_memstats_heap_sys_bytes", 45 * 2**20),
                            ("go_memstats_last_gc_time_seconds", int(self.start + t)),
                            ("go_memstats_mallocs_total", int(1000 * t)), ("go_memstats_frees_total", int(900 * t)),
                            ("go_memstats_sys_bytes", 60 * 2**20), ("go_memstats_stack_inuse_bytes", 2**21),
                            ("go_memstats_stack_sys_bytes", 2**21), ("go_memstats_next_gc_bytes", 50 * 2**20)):
            fam(name, [f"{name} {num(float(value))}"])
        fam("go_info", ['go_info{version="go1.26"} 1'])
        fam("go_gc_duration_seconds", [f'go_gc_duration_seconds{{quantile="{q}"}} 0.0001' for q in ("0", "0.25", "0.5", "0.75", "1")]
            + ["go_gc_duration_seconds_sum 0.01", f"go_gc_duration_seconds_count {int(t / 10)}"])
        return "".join(out).encode()

    def probes(self, pods):
        """/metrics/probes: the probe workers' counters (PROBES) of the running `pods`, every
        probe succeeding once per periodSeconds (default 10) since the pod started."""
        t = time.time()
        out = []

        def fam(name, lines):
            out.append(f"# HELP {name} kubelet {KUBERNETES_VERSION} stand-in\n# TYPE {name} {PROBES[name][0]}\n")
            out.extend(line + "\n" for line in lines)
        fam("process_start_time_seconds", [f"process_start_time_seconds {num(float(int(self.start)))}"])
        total, durations = [], []
        for pod in pods:
            md = pod["metadata"]
            started = max(self.start, _epoch((pod.get("status") or {}).get("startTime")) or self.start)
            for c in pod["spec"].get("containers", []):
                for field, kind in PROBE_TYPES:
                    probe = c.get(field)
                    if not probe:
                        continue
                    n = max(1, int((t - started) // probe.get("periodSeconds", 10)))
                    total.append(f"prober_probe_total{{{_labels(PROBES['prober_probe_total'][1], (kind, 'successful', c['name'], md['name'], md['namespace'], md['uid']))}}} {n}")
                    durations += _histogram("prober_probe_duration_seconds", PROBES["prober_probe_duration_seconds"][1],
                                            [(kind, c["name"], md["name"], md["namespace"])], DEFAULT_BUCKETS, n)
        fam("prober_probe_total", total)
        fam("prober_probe_duration_seconds", durations)
        return "".join(out).encode()


def _epoch(stamp):
    """Seconds since the epoch of an RFC 3339 time of the API server, or None."""
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _histogram(name, label_names, label_values, buckets, count):
    lines = []
    for values in label_values:
        lab = _labels(label_names, values)
        for le in buckets:
            lines.append(f'{name}_bucket{{{lab},le="{num(float(le))}"}} {count}')
        lines.append(f'{name}_bucket{{{lab},le="+Inf"}} {count}')
        lines.append(f"{name}_sum{{{lab}}} {num(count * 0.05)}")
        lines.append(f"{name}_count{{{lab}}} {count}")
    return lines


def documented_series(page_kind):
    """{series name: label names} a page may serve ("cadvisor", "kubelet" or "probes"), histograms and
    summaries expanded, for the tests that compare a served page with the tables."""
    out = {}
    if page_kind == "cadvisor":
        for name, (_, _, extra) in SERVED.items():
            out[name] = set((MACHINE_LABELS if name.startswith("machine_") else BASE_LABELS) + extra)
        return out
    for name, (kind, labels, _) in (PROBES if page_kind == "probes" else KUBELET).items():
        if kind == HISTOGRAM:
            out[f"{name}_bucket"] = set(labels) | {"le"}
            out[f"{name}_sum"] = out[f"{name}_count"] = set(labels)
        elif kind == "summary":
            out[name] = set(labels) | {"quantile"}
            out[f"{name}_sum"] = out[f"{name}_count"] = set(labels)
        else:
            out[name] = set(labels)
    return out
