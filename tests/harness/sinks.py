"""Local notification receivers, so Alertmanager's own notifiers (slack, email, pagerduty,
webhook) do the sending, on 127.0.0.1 only.

- HTTP sink (one ThreadingHTTPServer): Slack-compatible incoming webhook at /slack/<key>
  (records the JSON body; `channel` is the JSON's channel, else <key>; the path tells which
  webhook it came through), and Slack's chat.postMessage for a Slack app (a request with a
  Bearer token, recorded in `authorization`; answered with JSON as Slack does), PagerDuty Events API
  v2 at /pagerduty/v2/enqueue (answers 202 like PagerDuty), generic webhook at /webhook/<key>.
- SMTP sink: a real SMTP server (aiosmtpd) that accepts any AUTH PLAIN/LOGIN over plain TCP
  (Go's net/smtp allows PLAIN without TLS only to localhost, which 127.0.0.1 is) and records
  every message (envelope, headers, text and HTML bodies).
Each sink can be told to answer 5xx (SMTP: 451) for a while: `fail_for(seconds, kinds)`.
Everything received is a `Notification` in `.received` (thread-safe; `wait_for` polls).
"""
import dataclasses
import email
import email.policy
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from .polling import wait_until
from .ports import free_port

# aiosmtpd's own AUTH handler touches its deprecated Session.login_data.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


@dataclasses.dataclass
class Notification:
    kind: str           # slack | email | pagerduty | webhook
    key: str            # slack channel, email recipient, pagerduty routing key, webhook key
    body: object        # parsed JSON (HTTP sinks) or {"subject", "text", "html", "headers"}
    at: float
    path: str = ""
    authorization: str = ""   # the request's Authorization header (a Slack app's Bearer token)

    @property
    def text(self):
        """Everything a human would read, flattened (for 'contains' assertions)."""
        if self.kind == "email":
            return "\n".join(str(self.body.get(k) or "") for k in ("subject", "text", "html"))
        return json.dumps(self.body, ensure_ascii=False)


class _State:
    def __init__(self):
        self.received = []
        self.rejected = []          # (kind, key, at) of requests answered with an error
        self.refused = []           # the Notification each refused HTTP request would have been
        self.fail_until = {}        # kind -> monotonic deadline
        self.lock = threading.Lock()

    def failing(self, kind):
        with self.lock:
            return time.monotonic() < self.fail_until.get(kind, 0)

    def add(self, n):
        with self.lock:
            self.received.append(n)

    def reject(self, kind, key, notification=None):
        with self.lock:
            self.rejected.append((kind, key, time.time()))
            if notification is not None:
                self.refused.append(notification)


class _Handler(BaseHTTPRequestHandler):
    state = None   # set on the subclass

    def log_message(self, *a):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        kind = parts[0] if parts else ""
        if kind not in ("slack", "pagerduty", "webhook"):
            self._answer(404, {"error": f"unknown sink {self.path}"})
            return
        key = "/".join(parts[1:])
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        if kind == "slack" and isinstance(body, dict) and body.get("channel"):
            key = body["channel"]
        if kind == "pagerduty" and isinstance(body, dict):
            key = body.get("routing_key") or body.get("service_key") or key
        auth = self.headers.get("Authorization") or ""
        n = Notification(kind, key, body, time.time(), self.path, auth)
        if self.state.failing(kind):
            self.state.reject(kind, key, n)
            self._answer(503, {"error": "sink told to fail"})
            return
        self.state.add(n)
        if kind == "pagerduty":
            self._answer(202, {"status": "success", "message": "Event processed",
                               "dedup_key": (body or {}).get("dedup_key", "")})
        elif kind == "slack" and auth.startswith("Bearer "):
            # chat.postMessage (a Slack app's bot token) answers JSON; an incoming webhook "ok".
            self._answer(200, {"ok": True, "channel": key, "ts": f"{time.time():.6f}"})
        elif kind == "slack":
            self._answer(200, None, b"ok")
        else:
            self._answer(200, {"status": "ok"})

    def _answer(self, code, obj, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _SMTPHandler:
    def __init__(self, state):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.state.failing("email"):
            self.state.reject("email", address)
            return "451 4.3.0 sink told to fail"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        text = html = None
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "text/plain" and text is None:
                text = part.get_content()
            elif ctype == "text/html" and html is None:
                html = part.get_content()
        body = {"subject": str(msg.get("Subject", "")), "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos), "text": text, "html": html,
                "headers": {k: str(v) for k, v in msg.items()},
                "auth": _login(getattr(session, "auth_data", None))}
        for rcpt in envelope.rcpt_tos:
            self.state.add(Notification("email", rcpt, body, time.time()))
        return "250 Message accepted"


def _login(auth_data):
    """(user, password) of an AUTH exchange, or None when the client did not authenticate."""
    if auth_data is None:
        return None
    login, password = getattr(auth_data, "login", None), getattr(auth_data, "password", None)
    dec = lambda v: v.decode(errors="replace") if isinstance(v, bytes) else v  # noqa: E731
    return (dec(login), dec(password))


def _accept_any(server, session, envelope, mechanism, auth_data):
    """Accept any credentials, remembering them (auth_data: LoginPassword for PLAIN)."""
    return AuthResult(success=True, auth_data=auth_data)


class Sinks:
    """Start with `Sinks().start()`; `.http_url(kind, key)`, `.smtp_address`."""

    def __init__(self):
        self.state = _State()
        self._http = None
        self._smtp = None
        self.http_port = self.smtp_port = None

    def start(self):
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="sinks-http", daemon=True).start()
        self.smtp_port = free_port()
        self._smtp = Controller(_SMTPHandler(self.state), hostname="127.0.0.1", port=self.smtp_port,
                                auth_require_tls=False, authenticator=_accept_any,
                                auth_exclude_mechanism=["LOGIN"],   # its "User Name\\0" challenge is not what Go clients expect
                                server_hostname="sink.local", ready_timeout=10)
        self._smtp.start()
        return self

    def stop(self):
        if self._http:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._smtp:
            self._smtp.stop()
            self._smtp = None

    # ------------------------------------------------------------------ addresses
    def http_url(self, kind, key=""):
        path = {"pagerduty": "/pagerduty/v2/enqueue"}.get(kind, f"/{kind}/{key}")
        return f"http://127.0.0.1:{self.http_port}{path}"

    @property
    def smtp_address(self):
        return f"127.0.0.1:{self.smtp_port}"

    # ------------------------------------------------------------------ control and reading
    def fail_for(self, seconds, kinds=("slack", "pagerduty", "webhook", "email")):
        """Answer 503 (HTTP) / 451 (SMTP) for `seconds` from now (0: answer again at once)."""
        with self.state.lock:
            for k in kinds:
                self.state.fail_until[k] = time.monotonic() + seconds

    @property
    def received(self):
        with self.state.lock:
            return list(self.state.received)

    @property
    def rejected(self):
        with self.state.lock:
            return list(self.state.rejected)

    @property
    def refused(self):
        """The HTTP notifications answered 503 (what each would have delivered), oldest first.
        (SMTP is refused at RCPT, before a message exists: only in `rejected`.)"""
        with self.state.lock:
            return list(self.state.refused)

    def clear(self):
        with self.state.lock:
            self.state.received.clear()
            self.state.rejected.clear()
            self.state.refused.clear()

    def wait_for(self, predicate, timeout, interval=0.5):
        """Poll until predicate(received) is truthy; returns its value, or its last (falsy) value
        on timeout."""
        return wait_until(lambda: predicate(self.received), timeout, every=interval, retry=(), on_timeout=None)
