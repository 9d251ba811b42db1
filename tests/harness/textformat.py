"""A small writer of the Prometheus text exposition format for the stand-ins that serve many
series (kube-state-metrics, the kubelet and cAdvisor: harness.ksm_standin, harness.kubelet_standin).

prometheus_client's families cost a Python object per sample and a second pass to render; at
10,000 pods (about a million kube-state-metrics samples) that is seconds per page. Here each
sample is one formatted line, families keep their lines in order, and a stand-in can cache the
lines of an object that did not change between snapshots (`Page.extend`).
"""


def esc(value):
    """A label value as the text format writes it inside double quotes."""
    value = str(value)
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def labels(names, values):
    """`{a="x",b="y"}` for label names and values (empty braces left out)."""
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{esc(v)}"' for n, v in zip(names, values)) + "}"


def num(value):
    """A sample value as Go's strconv writes it for Prometheus (integers without a fraction)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Page:
    """Families in first-added order, each with its HELP, TYPE and sample lines."""

    def __init__(self):
        self._fams = {}      # name -> [type, help, [lines]]

    def family(self, name, kind, help_=""):
        """The line list of family `name` (declared on first use)."""
        fam = self._fams.get(name)
        if fam is None:
            fam = self._fams[name] = [kind, help_, []]
        return fam[2]

    def add(self, name, kind, names, values, value, help_=""):
        """One sample of family `name` (a counter's name given with its _total)."""
        self.family(name, kind, help_).append(f"{name}{labels(names, values)} {num(value)}")

    def extend(self, lines_by_family, kinds):
        """Add cached sample lines: {family: [line, ...]}, kinds {family: (type, help)}."""
        for name, lines in lines_by_family.items():
            kind, help_ = kinds[name]
            self.family(name, kind, help_).extend(lines)

    def names(self):
        return list(self._fams)

    def series(self):
        return sum(len(f[2]) for f in self._fams.values())

    def render(self):
        """The page as bytes (families with no sample are left out, as client_golang does)."""
        out = []
        for name, (kind, help_, lines) in self._fams.items():
            if lines:
                out.append(f"# HELP {name} {help_ or name}\n# TYPE {name} {kind}\n")
                out.append("\n".join(lines))
                out.append("\n")
        return "".join(out).encode()
