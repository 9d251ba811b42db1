"""A program the harness runs: its own process group, its log in a file, a readiness check, and
one cleanup set (every started process is stopped at exit even when a test's finalizer did not
run)."""
import atexit
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .polling import wait_until

_LIVE = set()


@atexit.register
def _kill_leftovers():
    for p in list(_LIVE):
        p.stop(timeout=3)


class AllOrNothing:
    """A mixin for something made of several parts started in turn (processes, servers, API
    objects): start() runs the subclass's _start() and, when any part fails, stop() undoes the
    parts already started before the error goes on, so a failed start leaves nothing running.
    stop() must cope with parts that never started."""

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self


class Process:
    """A program in its own process group, logging to a file, with a readiness URL (or a
    callable that returns True once ready)."""

    def __init__(self, name, argv, log_path, ready_url, cwd=None, env=None, unset_prefixes=()):
        """`env` is added to this process's environment (None: inherited as is); variables
        starting with one of `unset_prefixes` are not passed on."""
        self.name, self.argv, self.log_path, self.ready_url = name, list(argv), Path(log_path), ready_url
        self.cwd = cwd
        self.env = None
        if env is not None or unset_prefixes:
            base = {k: v for k, v in os.environ.items() if not k.startswith(tuple(unset_prefixes))}
            self.env = {**base, **(env or {})}
        self.proc = None

    def start(self, timeout=60):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n--- start {time.strftime('%H:%M:%S')}: {shlex.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd,
                                     env=self.env)
        log.close()
        _LIVE.add(self)
        try:
            wait_until(self._ready, timeout, f"{self.name} ready", every=0.2,
                       retry=(urllib.error.URLError, ConnectionError, OSError))
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} not ready at {self.ready_url} after {timeout}s:\n{self.log_tail()}") \
                from None
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        if callable(self.ready_url):  # a check of its own (TLS, a client certificate)
            return self.ready_url()
        with urllib.request.urlopen(self.ready_url, timeout=2) as r:
            return r.status == 200

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        _LIVE.discard(self)
        self.proc = None

    def restart(self, timeout=60):
        self.stop()
        return self.start(timeout)

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def serve_until_interrupted(start, exited, stop, stopping="stopping"):
    """A script's foreground life for servers it runs for a person (make cluster, make registry):
    start(), then ask exited() every second for a message saying something stopped on its own
    (printed, exit status 1) until Ctrl-C or SIGTERM (status 0). stop() runs in every case, with
    further Ctrl-C/SIGTERM ignored so that a second one cannot leave processes behind."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        start()
        while not (message := exited()):
            time.sleep(1)
        print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{stopping}")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop()
