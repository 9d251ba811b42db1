"""A stand-in check of LogQL metric queries, for the Loki ruler's alert expressions.

Loki cannot run here (AGPL, not built: DESIGN.md), so its parser cannot judge the rules. This
holds an expression to the part of the LogQL grammar of the pinned Loki 3.x the chart's rules
use (Loki's documentation, "LogQL: Log query language", "Metric queries"):

- a log range aggregation `rate | count_over_time | bytes_rate | bytes_over_time |
  absent_over_time ( <log range> )`, where a log range is `{stream selector} <pipeline> [range]`;
- a stream selector: one or more `label op "value"` matchers (op `=`, `!=`, `=~`, `!~`), at
  least one of which does not match the empty string (Loki refuses a selector that matches every
  stream); regex values must compile;
- a pipeline: line filters (`|=`, `!=`, `|~`, `!~` with a "string" or a `raw string`; regexes
  must compile), the parsers `| json` and `| logfmt`, and label filters (`| name op value`);
- around the log ranges, the metric query has PromQL's structure (aggregations with by/without,
  label_replace, binary operators and comparisons): each log range is replaced by a vector
  selector carrying its stream matchers and range, and the result is parsed by promql_parser.

Regexes are compiled with Python's `re` (RE2's syntax is, for what the chart writes, a subset).
What it cannot see: label names the log collector does not attach, type errors Loki's planner
would raise, and anything beyond this subset (it refuses it: an unknown stage fails the check).
"""
import re

import promql_parser

RANGE_FUNCS = ("rate", "count_over_time", "bytes_rate", "bytes_over_time", "absent_over_time")
_FUNC = re.compile(r"\b(" + "|".join(RANGE_FUNCS) + r")\s*\(")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_STRING = r'(?:"(?:[^"\\]|\\.)*"|`[^`]*`)'
_STAGES = [
    ("line filter", re.compile(r"\s*(\|=|!=|\|~|!~)\s*(" + _STRING + r")")),
    ("parser", re.compile(r"\s*\|\s*(json|logfmt)\b(?!\s*[=!<>~])")),
    ("label filter", re.compile(r"\s*\|\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|==|=|>=|<=|>|<)\s*(" + _STRING + r"|-?[0-9.]+)")),
]
_RANGE = re.compile(r"\s*\[\s*([0-9]+(?:ms|s|m|h|d|w|y))\s*\]\s*\)")


class LogQLError(ValueError):
    pass


def _unquote(text):
    if text.startswith("`"):
        return text[1:-1]
    return text[1:-1].encode().decode("unicode_escape")


def _compile(regex, where):
    try:
        return re.compile(regex)
    except re.error as e:
        raise LogQLError(f"{where}: regex {regex!r} does not compile: {e}") from None


def _closing(text, start, open_, close):
    """Index of the `close` matching text[start] == open_, skipping quoted strings."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch in "\"`":
            end = text.find(ch, i + 1)
            while ch == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(ch, end + 1)
            if end < 0:
                raise LogQLError(f"unterminated string at {i}: {text[i:i + 40]!r}")
            i = end + 1
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise LogQLError(f"no closing {close!r} for {open_!r} at {start}: {text[start:start + 60]!r}")


def stream_selector(text):
    """[(label, op, value)] of a `{...}` stream selector; LogQLError when it is not one."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise LogQLError(f"not a stream selector: {text!r}")
    body, out, pos = body[1:-1], [], 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise LogQLError(f"bad matcher in {text!r} at {body[pos:pos + 40]!r}")
        name, op, value = m.group(1), m.group(2), m.group(3).encode().decode("unicode_escape")
        if op in ("=~", "!~"):
            _compile(value, f"matcher {name}{op}")
        out.append((name, op, value))
        pos = m.end()
    if not out:
        raise LogQLError(f"empty stream selector {text!r}")
    if not any((op == "=" and v) or (op == "=~" and not re.fullmatch(v, "")) for _, op, v in out):
        raise LogQLError(f"{text!r}: every matcher matches the empty string (Loki refuses such a selector)")
    return out


def pipeline(text):
    """[(kind, detail)] of the stages of a log pipeline; LogQLError on anything else."""
    stages, pos = [], 0
    while pos < len(text) and text[pos:].strip():
        for kind, rx in _STAGES:
            m = rx.match(text, pos)
            if m:
                if kind == "line filter" and m.group(1) in ("|~", "!~"):
                    _compile(_unquote(m.group(2)), f"line filter {m.group(1)}")
                stages.append((kind, m.group(0).strip()))
                pos = m.end()
                break
        else:
            raise LogQLError(f"unknown pipeline stage at {text[pos:pos + 40]!r}")
    return stages


def log_ranges(expr):
    """[(function, selector matchers, pipeline stages, range, (start, end) of the argument)]."""
    out, pos = [], 0
    while True:
        m = _FUNC.search(expr, pos)
        if not m:
            return out
        open_at = m.end() - 1
        close_at = _closing(expr, open_at, "(", ")")
        arg = expr[open_at + 1:close_at + 1]          # through the closing parenthesis
        s = arg.lstrip()
        if not s.startswith("{"):
            raise LogQLError(f"{m.group(1)}(...) takes a log range, got {arg[:60]!r}")
        sel_start = open_at + 1 + (len(arg) - len(s))
        sel_end = _closing(expr, sel_start, "{", "}")
        rng = None
        # the pipeline runs up to the last `[range]` before the closing parenthesis
        tail = expr[sel_end + 1:close_at + 1]
        r = None
        for cand in _RANGE.finditer(tail):
            r = cand
        if not r or r.end() != len(tail):
            raise LogQLError(f"{m.group(1)}(...): no [range] closing the log range: {tail[:80]!r}")
        rng = r.group(1)
        out.append((m.group(1), stream_selector(expr[sel_start:sel_end + 1]), pipeline(tail[:r.start()]), rng,
                    (sel_start, close_at)))
        pos = close_at + 1


def check(expr):
    """Check a LogQL metric query (see the module docstring); returns its log ranges. Raises
    LogQLError (or promql_parser's error) when it is not valid LogQL of the checked subset."""
    ranges = log_ranges(expr)
    if not ranges:
        raise LogQLError(f"no log range aggregation ({', '.join(RANGE_FUNCS)}) in {expr!r}")
    promql = expr
    for _, matchers, _, rng, (start, end) in reversed(ranges):
        sel = ", ".join(f'{n}{op}"{_escape(v)}"' for n, op, v in matchers)
        promql = promql[:start] + f"__log_range__{{{sel}}}[{rng}])" + promql[end + 1:]
    try:
        promql_parser.parse(promql)
    except Exception as e:
        raise LogQLError(f"the metric query around the log ranges does not parse ({e}): {promql}") from None
    return ranges


def _escape(value):
    return value.replace("\\", "\\\\").replace('"', '\\"')
