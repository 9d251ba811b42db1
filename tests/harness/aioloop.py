"""An asyncio event loop in a daemon thread, for the harness's local servers (the synthetic
workload's pods, the pod network): start it, run coroutines on it from other threads, and stop
it with every server closed and every pending connection task cancelled."""
import asyncio
import threading


class LoopThread:
    def __init__(self, name):
        self.name = name
        self.loop = None
        self._thread = None

    def start(self):
        started = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            started.set()
            self.loop.run_forever()
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def call(self, coro, timeout=10):
        """Run `coro` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self, servers=()):
        """Close `servers` (asyncio servers), cancel what still runs, stop the loop."""
        if not self.loop:
            return

        async def close():
            for s in servers:
                s.close()
            for s in servers:
                await s.wait_closed()
            for _ in range(3):      # a connection accepted meanwhile starts a task of its own
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    break
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.call(close())
        except Exception:  # noqa: BLE001 - stopping anyway; the loop stops below
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop = None
