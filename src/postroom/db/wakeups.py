"""In-process wake-ups: a worker sleeping in the same process wakes at once when work arrives.

Workers in other processes hear of it through PostgreSQL LISTEN/NOTIFY (db/notices.py), whose
listener calls ``notify()`` here; on SQLite they fall back to their poll interval.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeups:
    """``notify()`` may be called from any thread; ``wait()`` from the worker's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout_seconds: float) -> bool:
        """Sleep until notified or the timeout passes; True when notified."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout_seconds)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.remove(entry)
