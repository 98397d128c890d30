"""The addresses a file's processing has written so far, in fixed memory, to spare most of the
duplicate look-ups in the database."""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_SLOTS = 1 << 24  # 16 MB: about 1.4 % of new keys need a look-up after a million


class SeenAddresses:
    """A Bloom filter of duplicate keys (two probes from ``hash()``, a byte per slot).

    ``may_have(key)`` is False only for a key never added: such a key needs no database
    look-up. True means "perhaps", and the database decides. Memory is ``slots`` bytes
    whatever the number of keys; more keys only mean more "perhaps". ``hash()`` of a str
    differs between processes, which is fine: a filter lives for one run over one file.
    """

    def __init__(self, slots: int = DEFAULT_SLOTS) -> None:
        if slots < 2 or slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self._slots = bytearray(slots)
        self._mask = slots - 1
        self._shift = slots.bit_length() - 1

    def may_have(self, key: str) -> bool:
        return bool(self.which_may_have((key,)))

    def which_may_have(self, keys: Iterable[str]) -> list[str]:
        """The keys for which ``may_have`` is True, in order (one call for a whole batch)."""
        slots, mask, shift = self._slots, self._mask, self._shift
        return [
            key for key in keys if slots[(h := hash(key)) & mask] and slots[(h >> shift) & mask]
        ]

    def add_all(self, keys: Iterable[str]) -> None:
        slots, mask, shift = self._slots, self._mask, self._shift
        for key in keys:
            h = hash(key)
            slots[h & mask] = 1
            slots[(h >> shift) & mask] = 1
