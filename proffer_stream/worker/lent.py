"""What a store saved, kept in memory and lent to the next batch instead of read again."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lent(Generic[K, V]):
    """At most ``most`` values, the most recently saved.

    :meth:`take` hands a value out and forgets it, so that one a batch changed and did
    not save is read afresh from the store; :meth:`keep` takes it back once saved.
    """

    def __init__(self, most: int) -> None:
        self.most = most
        self._values: dict[K, V] = {}

    def take(self, key: K) -> V | None:
        return self._values.pop(key, None)

    def keep(self, key: K, value: V) -> None:
        self._values[key] = value
        if len(self._values) > self.most:
            del self._values[next(iter(self._values))]  # the least recently saved

    def clear(self) -> None:
        self._values.clear()
