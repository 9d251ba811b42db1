"""PromQL helpers on top of promql_parser."""
import promql_parser


def selectors(expr):
    """[(metric name, {label names matched})] of every vector selector in a PromQL expression."""
    out = []

    def pre(node):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = list(node.matchers.matchers)
            name = node.name or next((m.value for m in matchers if m.name == "__name__"), None)
            out.append((name, {m.name for m in matchers}))

    promql_parser.walk(promql_parser.parse(expr), pre)
    return out


def metric_names(expr):
    """Every metric name a PromQL expression reads, in order."""
    return [name for name, _ in selectors(expr)]
