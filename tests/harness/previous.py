"""Values files as the previous released chart (ci/releases/) can take them: the keys a profile
sets that the previous release does not know (its strict schema refuses them) are left out,
each with its reason. The unit upgrade model (tests/test_unit_upgrade.py) and the cluster tier's
upgrade test (tests/test_cluster_install.py) install the previous release with these."""
import tempfile

import yaml

NEW_VALUES = {
    "thanos": "issue 26: the thanos subchart (Thanos Query), on in values/production.yaml",
    "grafana.datasources.prometheus.thanosQuery": "issue 26: Grafana's datasource on Thanos Query",
    "jaeger.spanMetrics": "issue 28: Jaeger's Monitor tab (service performance monitoring) reading Thanos Query",
}


_DIR = None     # the copies' directory, removed when the process exits (weakref.finalize)


def previous_values(values_files):
    """Temporary copies of values_files without NEW_VALUES (in a directory of this process's,
    removed when it exits)."""
    global _DIR
    if _DIR is None:
        _DIR = tempfile.TemporaryDirectory(prefix="previous-values-")
    out = []
    for f in values_files:
        doc = yaml.safe_load(open(f).read()) or {}
        for dotted in NEW_VALUES:
            *parents, last = dotted.split(".")
            node = doc
            for p in parents:
                node = node.get(p) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=_DIR.name, delete=False)
        yaml.safe_dump(doc, tmp)
        tmp.close()
        out.append(tmp.name)
    return tuple(out)
