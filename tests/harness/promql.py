"""PromQL helpers on top of promql_parser."""
import re

import promql_parser


def selectors(expr):
    """[(metric name, {label names matched})] of every vector selector in a PromQL expression."""
    out = []

    def pre(node):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = list(node.matchers.matchers)
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), None)
            labels = {m.name for m in matchers} - {"__name__"} if not node.name else {m.name for m in matchers}
            # {__name__=~"a|b"} (a list of plain names, as Phase5MetricsMissing renders it) reads a and b
            names = name.split("|") if name and re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\|[a-zA-Z_:][a-zA-Z0-9_:]*)+", name) else [name]
            out.extend((n, set(labels)) for n in names)

    promql_parser.walk(promql_parser.parse(expr), pre)
    return out


def metric_names(expr):
    """Every metric name a PromQL expression reads, in order."""
    return [name for name, _ in selectors(expr)]
