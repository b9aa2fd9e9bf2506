"""The rule of limits held cluster-wide (hived.nodes.limits), pure: which of a dispatch round's
assignments the database's books let start, given the units every node's tasks hold of each key, the
levels of the buckets and the limits closed by a throttled report. No I/O: the caller read the books
under the limits' row locks and writes what this returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Want = tuple[str, str, int]  # a limit a task takes: its name, its key ('' for none), the units


@dataclass
class Books:
    """What the database says of the limits a round takes: units held per (name, key) by every
    node, each limit's concurrency (None: none), bucket level now (None: no bucket) and whether a
    throttled report closed it."""

    held: dict[tuple[str, str], int] = field(default_factory=dict)
    concurrency: dict[str, int | None] = field(default_factory=dict)
    tokens: dict[str, float | None] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)


def summed(wants: Iterable[Want]) -> dict[tuple[str, str], int]:
    """A task's units per (name, key) (a task may name one key twice)."""
    out: dict[tuple[str, str], int] = {}
    for name, key, units in wants:
        out[(name, key)] = out.get((name, key), 0) + units
    return out


def fits(books: Books, wants: dict[tuple[str, str], int]) -> bool:
    per_limit: dict[str, int] = {}
    for (name, key), units in wants.items():
        if name not in books.concurrency:
            continue  # deleted meanwhile: it no longer applies
        if name in books.closed:
            return False
        most = books.concurrency[name]
        if most is not None and books.held.get((name, key), 0) + units > most:
            return False
        per_limit[name] = per_limit.get(name, 0) + units
    for name, units in per_limit.items():
        level = books.tokens.get(name)
        if level is not None and level + 1e-9 < units:
            return False
    return True


def admit(books: Books, asks: Sequence[tuple[str, Sequence[Want]]]) -> list[str]:
    """The task ids of `asks` (in the round's order) that may start: each one's units fit every
    key's concurrency beside what is held (and what the ones admitted before it took), its bucket
    has the tokens, and its limit is not closed. A limit the books do not know (deleted meanwhile)
    no longer applies. `books` is updated for those admitted."""
    out = []
    for task_id, wants in asks:
        units = summed(wants)
        if not fits(books, units):
            continue
        for (name, key), n in units.items():
            if name not in books.concurrency:
                continue
            books.held[(name, key)] = books.held.get((name, key), 0) + n
            level = books.tokens.get(name)
            if level is not None:
                books.tokens[name] = max(0.0, level - n)
        out.append(task_id)
    return out
