"""Limits in the dispatcher, in process on the real store and a FakeClock: a rate spreads starts over
time, a concurrency per key never runs two of a key at once, keys are served round-robin, a
throttled report closes a limit for the whole fleet without spending the task's attempts, and the
buckets and holders survive a restart."""

from __future__ import annotations

from typing import Any

import pytest

from hived.errors import Invalid
from hived.model.limits import LimitSpec
from hived.store import limits as limit_store
from tests.unit.inprocess import Core, result


async def define(hive: Core, **spec: Any) -> None:
    await hive.limit_service.apply(LimitSpec.model_validate(spec))


async def drain_starts(hive: Core, agent: str, seconds: float, step: float) -> list[tuple[float, str]]:
    """Run for `seconds` of fake time in `step`s: every lease is completed at once; returns
    (when it started, task id) of every start."""
    starts: list[tuple[float, str]] = []
    elapsed = 0.0
    while elapsed <= seconds + 1e-9:
        for lease in await hive.lease(agent):
            starts.append((round(hive.clock.monotonic(), 6), lease.task_id))
            await hive.dispatcher.report(agent, [result(lease)])
        await hive.clock.advance(step)
        elapsed += step
    return starts


async def test_a_rate_spreads_50_starts_over_9_seconds(hive: Core) -> None:
    await define(hive, name="api", rate="5/s")
    hive.dispatcher.attach("a", [], 100)
    for _ in range(50):
        await hive.submit(limits=[{"name": "api"}])
    starts = await drain_starts(hive, "a", 12, 0.05)
    times = [t for t, _ in starts]
    assert len(starts) == 50
    assert times[-1] - times[0] >= 9 - 1e-6
    # the first second holds the burst (5) on top of the rate; after it, no 1 s window holds over 5
    for t in times:
        if t >= 1:
            assert sum(1 for u in times if t <= u < t + 1) <= 5, t


async def test_concurrency_one_per_key_runs_keys_in_parallel_never_two_of_a_key(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1)
    hive.dispatcher.attach("a", [], 10)
    ids = {}
    ref = [{"name": "repo", "key": "${{ payload.repo }}"}]
    for repo in ["x", "x", "x", "y", "y", "z"]:
        ids[await hive.submit(payload={"repo": repo}, limits=ref)] = repo
    running: dict[str, str] = {}  # task id -> repo
    seen_parallel = 0
    for _ in range(10):
        for lease in await hive.lease("a"):
            running[lease.task_id] = ids[lease.task_id]
        repos = list(running.values())
        assert len(repos) == len(set(repos)), repos  # never two of a key at once
        seen_parallel = max(seen_parallel, len(repos))
        if not running:
            break
        done_id = next(iter(running))
        (lease,) = [entry.lease_message() for t, entry in hive.dispatcher.in_flight.items() if t == done_id]
        await hive.dispatcher.report("a", [result(lease)])
        running.pop(done_id)
    assert seen_parallel == 3  # x, y and z ran at once
    for task_id in ids:
        assert (await hive.task(task_id))["status"] == "completed"


async def test_a_waiting_task_shows_why_and_holds_no_agent_slot(hive: Core) -> None:
    await define(hive, name="repo", concurrency=1)
    hive.dispatcher.attach("a", [], 2)
    first = await hive.submit(payload={"r": "x"}, limits=[{"name": "repo", "key": "${{ payload.r }}"}])
    second = await hive.submit(payload={"r": "x"}, limits=[{"name": "repo", "key": "${{ payload.r }}"}])
    plain = await hive.submit()
    leases = await hive.lease("a")
    assert {lease.task_id for lease in leases} == {first, plain}  # the slot went to the plain task
    detail = await hive.tasks.get(second)
    assert (detail.status, detail.waiting_reason) == ("pending", "limit repo[x]")
    assert [ref.model_dump() for ref in detail.limits] == [{"name": "repo", "key": "x", "units": 1}]
    info = hive.limit_service.info("repo")
    assert (info.holders, info.waiting) == (1, 1)


async def test_fairness_key_b_starts_within_the_first_20_of_1000_waiting_on_a(hive: Core) -> None:
    await define(hive, name="api", rate="2/s")
    hive.dispatcher.attach("a", [], 100)
    ref = [{"name": "api", "key": "${{ payload.k }}"}]
    rows = [hive.new_task_row(_sub(k="A", limits=ref)) for _ in range(1000)]
    rows += [hive.new_task_row(_sub(k="B", limits=ref)) for _ in range(10)]
    await hive.db.write(lambda c: [c.execute(limit_store.tasks.insert(), rows)])
    for row in rows:
        hive.accepted(row)
    b_ids = {row["id"] for row in rows[1000:]}
    starts = await drain_starts(hive, "a", 10, 0.1)
    first_b = next(i for i, (_, task_id) in enumerate(starts) if task_id in b_ids)
    assert first_b < 20
    assert sum(1 for _, t in starts[:20] if t in b_ids) >= 5  # round-robin: B gets every other start


def _sub(k: str, limits: list[dict[str, Any]]) -> Any:
    from hived.model.schemas import TaskSubmit

    return TaskSubmit(type="job", payload={"k": k}, limits=limits)


async def test_a_throttled_report_closes_the_limit_fleet_wide_and_spends_no_attempt(hive: Core) -> None:
    await define(hive, name="anthropic", rate="100/s")
    hive.dispatcher.attach("a", [], 1)
    hive.dispatcher.attach("b", [], 1)
    first = await hive.submit(max_attempts=1, limits=[{"name": "anthropic"}])
    (lease,) = await hive.lease("a")
    throttled = result(lease, ok=False).model_copy(
        update={"reason": "throttled", "result": {"throttled": {"limit": "anthropic", "retry_after": 30}}}
    )
    (ack,) = await hive.dispatcher.report("a", [throttled])
    assert ack.accepted
    row = await hive.task(first)
    assert (row["status"], row["throttled"], row["attempts"]) == ("pending", 1, 1)
    other = await hive.submit(limits=[{"name": "anthropic"}])
    unlimited = await hive.submit()
    assert [lease.task_id for lease in await hive.lease("b")] == [unlimited]  # no one starts it
    assert await hive.lease("a") == []
    assert hive.limit_service.info("anthropic").closed_until is not None
    assert (await hive.tasks.get(other)).waiting_reason == "limit anthropic"
    await hive.clock.advance(29)
    assert await hive.lease("a") == []
    await hive.clock.advance(1)
    leases = await hive.lease("a")
    assert [lease.task_id for lease in leases] == [first]
    await hive.dispatcher.report("a", [result(leases[0])])
    row = await hive.task(first)
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("completed", 2, 1)
    reasons = [a["reason"] for a in await hive.attempts(first)]
    assert reasons == ["throttled", None]


async def test_a_throttled_report_naming_an_unknown_limit_fails_the_attempt(hive: Core) -> None:
    hive.dispatcher.attach("a", [], 1)
    task_id = await hive.submit(max_attempts=1)
    (lease,) = await hive.lease("a")
    report = result(lease, ok=False).model_copy(
        update={"reason": "throttled", "result": {"throttled": {"limit": "nope", "retry_after": 3}}}
    )
    await hive.dispatcher.report("a", [report])
    row = await hive.task(task_id)
    assert row["status"] == "failed" and "not defined" in row["error"]


async def test_the_bucket_is_written_with_the_assignment_and_read_back_after_a_restart(hive: Core) -> None:
    await define(hive, name="api", rate="10/min", burst=3)
    hive.dispatcher.attach("a", [], 10)
    for _ in range(5):
        await hive.submit(limits=[{"name": "api"}])
    assert len(await hive.lease("a")) == 3
    stored = await hive.db.read(lambda c: limit_store.get_limit(c, "api"))
    assert stored is not None and stored["tokens"] == pytest.approx(0.0) and stored["version"] == 1
    # a new gate, loaded from the database as a restarted hived's: the bucket is still empty
    from hived.limits.gate import LimitGate
    from hived.limits.service import LimitsService

    gate = LimitGate(lambda: hive.clock.now().timestamp())
    service = LimitsService(hive.db, gate, hive.clock)
    await service.load()
    assert service.info("api").tokens == pytest.approx(0.0)
    await hive.clock.advance(6)  # 10/min: one token every 6 s
    assert service.info("api").tokens == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("limits", "payload", "message"),
    [
        ([{"name": "nope"}], {}, "limits.0.name: unknown limit 'nope'"),
        ([{"name": "api", "key": "${{ payload.missing }}"}], {}, "limits.0.key: cannot evaluate"),
        ([{"name": "api", "key": "${{ payload.n }}"}], {"n": 3}, "limits.0.key: '${{ payload.n }}' gave 3"),
        ([{"name": "api", "units": 9}], {}, "limits.0.units: 9 is more than limit 'api' ever gives (5)"),
    ],
)
async def test_bad_limits_on_a_submission_are_refused_and_nothing_is_stored(
    hive: Core, limits: list[dict[str, Any]], payload: dict[str, Any], message: str
) -> None:
    await define(hive, name="api", rate="5/s")
    with pytest.raises(Invalid) as caught:
        await hive.tasks.submit({"type": "job", "payload": payload, "limits": limits})
    assert str(caught.value).startswith(message)
    listed, total = await hive.tasks.list()
    assert total == 0 and not hive.dispatcher.ready


async def test_a_limit_in_use_is_not_deleted_and_a_free_one_is(hive: Core) -> None:
    from hived.errors import Conflict, NotFound

    await define(hive, name="repo", concurrency=1)
    hive.dispatcher.attach("a", [], 10)
    ref = [{"name": "repo", "key": "${{ payload.r }}"}]
    for _ in range(2):
        await hive.submit(payload={"r": "x"}, limits=ref)
    (lease,) = await hive.lease("a")
    with pytest.raises(Conflict, match="limit 'repo' is in use: 1 task\\(s\\) hold it, 1 wait for it"):
        await hive.limit_service.delete("repo")
    await hive.dispatcher.report("a", [result(lease)])
    (second,) = await hive.lease("a")
    await hive.dispatcher.report("a", [result(second)])
    deleted = await hive.limit_service.delete("repo")
    assert deleted.name == "repo" and hive.limit_service.list() == []
    assert await hive.db.read(lambda c: limit_store.get_limit(c, "repo")) is None
    with pytest.raises(NotFound):
        await hive.limit_service.delete("repo")
    with pytest.raises(Invalid, match="limits.0.name: unknown limit 'repo'"):
        await hive.tasks.submit({"type": "job", "payload": {"r": "x"}, "limits": ref})


async def test_a_task_back_from_a_backoff_runs_without_a_limit_deleted_meanwhile(hive: Core) -> None:
    await define(hive, name="api", rate="5/s")
    hive.dispatcher.attach("a", [], 10)
    task_id = await hive.submit(limits=[{"name": "api"}], max_attempts=2)
    (lease,) = await hive.lease("a")
    await hive.dispatcher.report("a", [result(lease, ok=False)])  # a retry, after a backoff
    await hive.limit_service.delete("api")
    await hive.clock.advance(60)
    (again,) = await hive.lease("a")
    assert again.task_id == task_id
    await hive.dispatcher.report("a", [result(again)])
    assert (await hive.task(task_id))["status"] == "completed"
