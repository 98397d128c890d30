"""A stored object read front to back in ranges, so a large one is never held whole."""

from __future__ import annotations

import io
from collections.abc import Callable

#: Fetches bytes ``start`` to ``end`` (inclusive) of the object as it was when it was opened.
FetchRange = Callable[[int, int], bytes]


class RangedReader(io.RawIOBase):
    """Reads ``size`` bytes through ``fetch_range``, ``range_bytes`` at a time: at most one
    range is in memory, and a reader that stops early never fetches the rest."""

    def __init__(self, fetch_range: FetchRange, *, size: int, range_bytes: int) -> None:
        if range_bytes <= 0:
            raise ValueError("range_bytes must be positive")
        self._fetch_range = fetch_range
        self._size = size
        self._range_bytes = range_bytes
        self._position = 0  # of the next byte to hand out
        self._range = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if not self._range:
            if self._position >= self._size:
                return 0
            end = min(self._position + self._range_bytes, self._size) - 1
            data = self._fetch_range(self._position, end)
            if len(data) != end - self._position + 1:
                raise OSError(f"asked for bytes {self._position}-{end}, got {len(data)} bytes")
            self._range = memoryview(data)
        count = min(len(buffer), len(self._range))
        buffer[:count] = self._range[:count]
        self._range = self._range[count:]
        self._position += count
        return count

    def close(self) -> None:
        self._range = memoryview(b"")
        super().close()


def open_ranged(fetch_range: FetchRange, *, size: int, range_bytes: int) -> io.BufferedReader:
    """A buffered binary stream over a ``RangedReader``: ``read(n)`` returns ``n`` bytes
    until the end, whatever the ranges."""
    raw = RangedReader(fetch_range, size=size, range_bytes=range_bytes)
    return io.BufferedReader(raw, buffer_size=min(range_bytes, 64 * 1024))
