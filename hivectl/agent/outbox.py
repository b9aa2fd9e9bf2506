"""Finished attempts waiting for hived's acknowledgement.

A result is either waiting (to go out with the next request) or sending (inside one request). An ack,
accepted or refused, removes it; a request that fails puts its results back to waiting, so no result
is lost while hived is unreachable, and none is in two requests at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from hivectl.agent.wire import AttemptResult, ResultAck

Key = tuple[str, int, int]  # task id, attempt, lease


def _key(result: AttemptResult) -> Key:
    return (result.task_id, result.attempt, result.lease)


class Outbox:
    def __init__(self) -> None:
        self._results: dict[Key, AttemptResult] = {}
        self._sending: set[Key] = set()

    def __len__(self) -> int:
        return len(self._results)

    def add(self, result: AttemptResult) -> None:
        self._results[_key(result)] = result

    def has_waiting(self) -> bool:
        return len(self._sending) < len(self._results)

    def task_ids(self) -> set[str]:
        """Tasks whose attempt is over but not yet acknowledged: the agent still answers for them."""
        return {key[0] for key in self._results}

    def take(self) -> list[AttemptResult]:
        """The waiting results, now marked as sending."""
        batch = [result for key, result in self._results.items() if key not in self._sending]
        self._sending.update(_key(result) for result in batch)
        return batch

    def release(self, sent: Iterable[AttemptResult]) -> None:
        """The request carrying `sent` failed: they wait for the next one."""
        self._sending.difference_update(_key(result) for result in sent)

    def settle(self, sent: Iterable[AttemptResult], acks: Iterable[ResultAck]) -> list[ResultAck]:
        """Drop the sent results that hived acknowledged; the others wait again. Returns the refusals."""
        acked = {ack.task_id: ack for ack in acks}
        refused = []
        for result in sent:
            key = _key(result)
            self._sending.discard(key)
            ack = acked.get(result.task_id)
            if ack is None:
                continue
            self._results.pop(key, None)
            if not ack.accepted:
                refused.append(ack)
        return refused
