"""The queue controls: pauses of the queue (`hivectl queue pause|resume`) and cordons of agents
(`hivectl agent cordon|uncordon`). Each is stored first (they outlive a restart of hived), then put in
force in the dispatcher's gate (hived.tasks.holds). SQL stays in hived.store.queue."""

from __future__ import annotations

from hived.errors import Invalid, NotFound
from hived.model.queue import PauseSelector, QueuePause, ResumeRequest
from hived.store import queue as queue_store
from hived.tasks.dispatcher import Dispatcher
from hived.tasks.holds import Pause


def pause_of(selector: PauseSelector) -> Pause:
    return Pause(selector.type, frozenset(selector.requires), selector.workflow)


class QueueControls:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.db = dispatcher.db
        self.holding = dispatcher.holding
        self._since: dict[str, QueuePause] = {}  # key -> the pause as shown (with its time)

    async def load(self) -> None:
        """The pauses and cordons stored by the last run (before the queue is recovered)."""
        for row in await self.db.read(queue_store.load_pauses):
            shown = QueuePause.model_validate({**row, "requires": row["requires"] or []})
            self._put(pause_of(shown), shown)
        self.holding.cordoned = set(await self.db.read(queue_store.cordoned_agents))

    def pauses(self) -> list[QueuePause]:
        return sorted(self._since.values(), key=lambda p: p.created_at)

    def _put(self, pause: Pause, shown: QueuePause) -> None:
        self.holding.pauses[pause.key] = pause
        self._since[pause.key] = shown

    async def pause(self, selector: PauseSelector) -> list[QueuePause]:
        """Hold the tasks `selector` picks (those queued now, and those that come): they stay pending.
        Pausing what is paused already changes nothing."""
        pause = pause_of(selector)
        if pause.key not in self.holding.pauses:
            shown = QueuePause(**selector.model_dump(), created_at=self.dispatcher.clock.now())
            row = {**selector.model_dump(), "key": pause.key, "created_at": shown.created_at}
            await self.db.write(lambda c: queue_store.add_pause(c, row))
            self._put(pause, shown)
            self.dispatcher.rehold()
        return self.pauses()

    async def resume(self, request: ResumeRequest) -> list[QueuePause]:
        """Lift the pause given by the same selector (or, with `all`, every pause): the tasks no
        other pause holds go back to the queue in their order."""
        selector = PauseSelector.model_validate(request.model_dump(exclude={"all"}))
        if request.all:
            if selector != PauseSelector():
                raise Invalid("all: give all, or a selector (type, requires, workflow), not both")
            keys = list(self.holding.pauses)
        else:
            key = pause_of(selector).key
            if key not in self.holding.pauses:
                shown = pause_of(selector).describe()
                raise NotFound(f"the queue is not paused for {shown} (see hivectl queue)")
            keys = [key]
        if keys:
            await self.db.write(lambda c: queue_store.delete_pauses(c, keys))
        for key in keys:
            self.holding.pauses.pop(key, None)
            self._since.pop(key, None)
        self.dispatcher.rehold()
        return self.pauses()

    async def cordon(self, agent_id: str, cordoned: bool) -> None:
        """A cordoned agent is given no new work; what it runs finishes."""
        await self.db.write(lambda c: queue_store.set_cordoned(c, agent_id, cordoned))
        if cordoned:
            self.holding.cordoned.add(agent_id)
        else:
            self.holding.cordoned.discard(agent_id)
        self.dispatcher.rehold()
