"""The one polling loop of the harness and the tests: call check() until it returns something
truthy or the time is up."""
import time

_RAISE = object()


def wait_until(check, timeout, what="condition", every=0.5, *, retry=(Exception,), fatal=(),
               error=TimeoutError, on_timeout=_RAISE):
    """Call check() every `every` seconds until it returns something truthy, and return that.

    check() runs at least once and once more when the deadline has passed. Exceptions of the
    `retry` types count as "not yet" (the last one is named in the timeout message), those of
    the `fatal` types and any other end the wait at once. After `timeout` seconds: raise `error`
    naming `what`, or, when `on_timeout` is given, return check()'s last value (or on_timeout
    when the last call raised)."""
    deadline, last_error = time.monotonic() + timeout, None
    while True:
        value = on_timeout if on_timeout is not _RAISE else None
        try:
            value = check()
            last_error = None
            if value:
                return value
        except fatal:
            raise
        except retry as e:
            last_error = e
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    if on_timeout is not _RAISE:
        return value
    raise error(f"{what}: not true after {timeout}s" + (f" (last error: {last_error})" if last_error else ""))
