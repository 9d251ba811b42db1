"""Helpers for the log tiers: a small parser for Grafana Alloy's configuration syntax
(no Alloy binary can be installed here), and a collector-neutral view of the Promtail
and Alloy configurations so one test can assert that both produce the same labels.

The parser covers what the chart writes: blocks (`name.sub "label" { ... }`), attributes
(`key = expr`), strings, numbers, booleans, lists, object literals, references
(`a.b.c`), calls (`sys.env("X")`) and `+` concatenation; `//` and `/* */` comments.
Anything else raises AlloySyntaxError with the line number.
"""
import json
import re
from dataclasses import dataclass, field


class AlloySyntaxError(ValueError):
    pass


@dataclass
class Ref:
    """A reference to another component's export, e.g. discovery.kubernetes.pods.targets."""
    path: str


@dataclass
class Call:
    name: str
    args: list


@dataclass
class Concat:
    parts: list


@dataclass
class Block:
    name: str
    label: str | None
    attrs: dict = field(default_factory=dict)
    blocks: list = field(default_factory=list)
    line: int = 0

    def children(self, name):
        return [b for b in self.blocks if b.name == name]

    def child(self, name):
        found = self.children(name)
        if len(found) != 1:
            raise KeyError(f"{self.name} {self.label!r}: want one {name!r} block, found {len(found)}")
        return found[0]


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\](),=.+])
""", re.VERBOSE | re.DOTALL)


def _tokens(text):
    pos, line = 0, 1
    out = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise AlloySyntaxError(f"line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        value = m.group()
        if kind not in ("ws", "lcomment", "bcomment"):
            out.append((kind, value, line))
        line += value.count("\n")
        pos = m.end()
    out.append(("eof", "", line))
    return out


class _Parser:
    def __init__(self, text):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k]

    def take(self, kind=None, value=None):
        tok = self.toks[self.i]
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            want = value or kind
            raise AlloySyntaxError(f"line {tok[2]}: expected {want!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def dotted(self):
        parts = [self.take("ident")[1]]
        while self.peek()[1] == "." and self.peek(1)[0] == "ident":
            self.take("punct", ".")
            parts.append(self.take("ident")[1])
        return ".".join(parts)

    def body(self, end):
        attrs, blocks = {}, []
        while self.peek()[1] != end and self.peek()[0] != "eof":
            line = self.peek()[2]
            name = self.dotted()
            if self.peek()[1] == "=":
                self.take("punct", "=")
                if name in attrs:
                    raise AlloySyntaxError(f"line {line}: attribute {name!r} set twice")
                attrs[name] = self.expr()
            else:
                label = None
                if self.peek()[0] == "string":
                    label = json.loads(self.take("string")[1])
                self.take("punct", "{")
                a, b = self.body("}")
                self.take("punct", "}")
                blocks.append(Block(name, label, a, b, line))
        return attrs, blocks

    def expr(self):
        parts = [self.primary()]
        while self.peek()[1] == "+":
            self.take("punct", "+")
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else Concat(parts)

    def items(self, end, item):
        """A comma-separated sequence of item() up to the closing `end` (trailing comma allowed)."""
        out = []
        while self.peek()[1] != end:
            out.append(item())
            if self.peek()[1] == ",":
                self.take()
        self.take("punct", end)
        return out

    def entry(self):
        """One `key = value` of an object literal."""
        kind, key, _ = self.take()
        key = json.loads(key) if kind == "string" else key
        self.take("punct", "=")
        return key, self.expr()

    def primary(self):
        kind, value, line = self.peek()
        if kind == "string":
            self.take()
            return json.loads(value)
        if kind == "number":
            self.take()
            return float(value) if "." in value else int(value)
        if value == "[":
            self.take()
            return self.items("]", self.expr)
        if value == "{":
            self.take()
            return dict(self.items("}", self.entry))
        if kind == "ident":
            if value in ("true", "false", "null"):
                self.take()
                return {"true": True, "false": False, "null": None}[value]
            name = self.dotted()
            if self.peek()[1] == "(":
                self.take()
                return Call(name, self.items(")", self.expr))
            return Ref(name)
        raise AlloySyntaxError(f"line {line}: unexpected {value!r}")


def parse_alloy(text):
    """Parse Alloy configuration text into a root Block (name '', its blocks the components)."""
    p = _Parser(text)
    attrs, blocks = p.body(None)
    if p.peek()[0] != "eof":
        raise AlloySyntaxError(f"line {p.peek()[2]}: unexpected {p.peek()[1]!r}")
    if attrs:
        raise AlloySyntaxError(f"top-level attributes are not allowed: {sorted(attrs)}")
    return Block("", None, attrs, blocks)


def components(root):
    """{(name, label): Block} for the top-level components; duplicates raise."""
    out = {}
    for b in root.blocks:
        key = (b.name, b.label)
        if key in out:
            raise AlloySyntaxError(f"line {b.line}: component {b.name} {b.label!r} declared twice")
        out[key] = b
    return out


def references(node):
    """Every Ref inside attributes of a block tree (or a value)."""
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Block):
        for v in node.attrs.values():
            yield from references(v)
        for b in node.blocks:
            yield from references(b)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from references(v)
    elif isinstance(node, dict):
        for v in node.values():
            yield from references(v)
    elif isinstance(node, Concat):
        yield from references(node.parts)
    elif isinstance(node, Call):
        yield from references(node.args)


# --- a collector-neutral view ------------------------------------------------------------

def _rule(d):
    """A relabel rule with Prometheus defaults filled in, for comparison across collectors."""
    return {
        "source_labels": tuple(d.get("source_labels") or ()),
        "separator": d.get("separator", ";"),
        "regex": d.get("regex", "(.*)"),
        "target_label": d.get("target_label"),
        "replacement": d.get("replacement", "$1"),
        "action": d.get("action", "replace"),
    }


def promtail_view(cfg):
    """Pod relabel rules, pipeline facts, system-log targets and push URLs of a Promtail config."""
    jobs = {j["job_name"]: j for j in cfg.get("scrape_configs") or []}
    pods = jobs.get("kubernetes-pods") or {}
    stages = pods.get("pipeline_stages") or []
    json_exprs, labels, metadata, kinds = {}, set(), set(), []
    for st in stages:
        (kind, body), = st.items()
        kinds.append(kind)
        if kind == "json":
            json_exprs.update(body["expressions"])
        elif kind == "labels":
            labels.update(body)
        elif kind == "structured_metadata":
            metadata.update(body)
    rules = [_rule(r) for r in pods.get("relabel_configs") or []
             if r.get("target_label") != "__host__"]  # Promtail's node filter; Alloy uses a field selector
    system = []
    for sc in (jobs.get("varlogs") or {}).get("static_configs") or []:
        system.append(dict(sc.get("labels") or {}))
    return {
        "sd_roles": [sd["role"] for sd in pods.get("kubernetes_sd_configs") or []],
        "rules": rules,
        "stages": kinds,
        "json": json_exprs,
        "labels": labels,
        "structured_metadata": metadata,
        "system": system,
        "push_urls": [c["url"] for c in cfg.get("clients") or []],
    }


def alloy_view(root):
    """The same view of an Alloy configuration."""
    comps = components(root)
    kube = comps.get(("discovery.kubernetes", "pods"))
    relabel = comps.get(("discovery.relabel", "pods"))
    process = comps.get(("loki.process", "pods"))
    rules = [_rule(r.attrs) for r in relabel.children("rule")] if relabel else []
    json_exprs, labels, metadata, kinds = {}, set(), set(), []
    for st in process.blocks if process else []:
        kind = st.name.removeprefix("stage.")
        kinds.append(kind)
        if kind == "json":
            json_exprs.update(st.attrs["expressions"])
        elif kind == "labels":
            labels.update(st.attrs["values"])
        elif kind == "structured_metadata":
            metadata.update(st.attrs["values"])
    system = []
    varlogs = comps.get(("local.file_match", "varlogs"))
    if varlogs:
        system = [dict(t) for t in varlogs.attrs["path_targets"]]
    push = [e.attrs["url"] for b in root.blocks if b.name == "loki.write" for e in b.children("endpoint")]
    return {
        "sd_roles": [kube.attrs["role"]] if kube else [],
        "rules": rules,
        "stages": kinds,
        "json": json_exprs,
        "labels": labels,
        "structured_metadata": metadata,
        "system": system,
        "push_urls": push,
    }
