"""The lot actor against an in-memory log that enforces the expected-sequence rule: sequencing,
idempotent retries, a second writer, unconfirmed appends, replay, timers."""

from __future__ import annotations

import asyncio

import pytest
from room_fakes import Clock, FakeLog, FakeTerms, world
from room_support import HOUR, crier, english, lucky

from gavel_core.errors import FailedPrecondition, NotFound, ResourceExhausted
from room.app.lots import CommandRequest, NotOwner, WithdrawLot
from room.app.model import ClosingSoon, LotConfigured, LotInfo, PublishedLot
from room.domain import OpenLot, PlaceBid, Tick, state_hash
from room.domain.events import BidAccepted, LotOpened, LotSold, LotUnsold

LOT = "lot-1"


def bid(request_id: str, bidder: str, amount: int) -> CommandRequest:
    return CommandRequest(request_id, "PlaceBid", bidder, f"{bidder}:{amount}", PlaceBid(request_id, bidder, amount))


def open_request(request_id: str = "open-1") -> CommandRequest:
    return CommandRequest(request_id, "OpenLot", "crier", request_id, OpenLot("crier"))


async def opened(w, lot_id: str = LOT, terms=None):
    w.terms.add(lot_id, terms or english(opening_bid=1_000))
    actor = await w.lots.loaded(lot_id)
    await actor.execute(open_request(f"open-{lot_id}"))
    return actor


async def test_a_lot_starts_with_its_terms_and_batches_are_numbered_per_lot():
    w = world()
    actor = await opened(w)
    first = await actor.execute(bid("b1", "alice", 5_000))
    second = await actor.execute(bid("b2", "bob", 3_000))
    batches = w.log.batches(LOT)
    assert [b.lot_sequence for b in batches] == [1, 2, 3, 4]
    assert isinstance(batches[0].events[0], LotConfigured)
    assert isinstance(batches[1].events[0], LotOpened)
    assert (first.lot_sequence, first.leader, first.price) == (3, "alice", 1_000)
    assert (second.lot_sequence, second.leader, second.price) == (4, "alice", 3_100)
    assert [b.command_id for b in batches[2:]] == ["b1", "b2"]


async def test_each_append_expects_the_previous_batch_of_its_own_lot():
    w = world()
    await opened(w, "lot-a")
    await opened(w, "lot-b")
    a = await w.lots.loaded("lot-a")
    b = await w.lots.loaded("lot-b")
    await a.execute(bid("a1", "alice", 2_000))
    await b.execute(bid("b1", "alice", 2_000))
    await a.execute(bid("a2", "bob", 3_000))
    assert a.stream_sequence == w.log.last_sequence("lot-a")
    assert b.stream_sequence == w.log.last_sequence("lot-b")
    assert [x.lot_sequence for x in w.log.batches("lot-a")] == [1, 2, 3, 4]


async def test_commands_for_one_lot_run_one_at_a_time_while_lots_append_concurrently():
    w = world()
    w.log.delay_s = 0.01
    lots = [f"lot-{i}" for i in range(5)]
    actors = [await opened(w, lot) for lot in lots]
    w.log.max_in_flight = 0
    await asyncio.gather(
        *(
            actor.execute(bid(f"{actor.lot_id}-{i}", f"bidder-{i}", 1_000 + 500 * i))
            for actor in actors
            for i in range(4)
        )
    )
    assert w.log.max_in_flight == len(lots)  # one per lot, all lots at once
    for lot in lots:
        assert [b.lot_sequence for b in w.log.batches(lot)] == list(range(1, 7))


async def test_in_flight_appends_are_capped():
    w = world(max_in_flight=2)
    w.log.delay_s = 0.01
    actors = [await opened(w, f"lot-{i}") for i in range(6)]
    w.log.max_in_flight = 0
    await asyncio.gather(*(a.execute(bid(f"x-{a.lot_id}", "alice", 2_000)) for a in actors))
    assert w.log.max_in_flight == 2


async def test_a_retry_gets_the_first_answer_without_a_second_append():
    w = world()
    actor = await opened(w)
    first = await actor.execute(bid("b1", "alice", 5_000))
    await actor.execute(bid("b2", "bob", 6_000))
    appends = w.log.appends
    again = await actor.execute(bid("b1", "alice", 5_000))
    assert again == first
    assert w.log.appends == appends


async def test_a_request_id_reused_for_another_request_is_refused():
    w = world()
    actor = await opened(w)
    await actor.execute(bid("b1", "alice", 5_000))
    with pytest.raises(FailedPrecondition) as caught:
        await actor.execute(bid("b1", "alice", 9_000))
    assert caught.value.reason == "REQUEST_ID_REUSED"


async def test_a_retried_refusal_gets_the_same_refusal():
    w = world()
    actor = await opened(w)
    await actor.execute(bid("b1", "alice", 5_000))
    with pytest.raises(FailedPrecondition) as first:
        await actor.execute(bid("low", "bob", 1_000))
    await actor.execute(bid("b2", "carol", 9_000))  # the minimum moves on
    with pytest.raises(FailedPrecondition) as again:
        await actor.execute(bid("low", "bob", 1_000))
    assert first.value.reason == again.value.reason == "BID_TOO_LOW"
    assert again.value.metadata == first.value.metadata == {"min_amount_minor": "1100"}


async def test_another_writer_wins_the_append_and_the_lot_is_rebuilt_and_decided_again():
    log = FakeLog()
    terms = FakeTerms()
    mine, theirs = world(log=log, terms=terms), world(log=log, terms=terms)
    actor = await opened(mine)
    other = await theirs.lots.loaded(LOT)
    await other.execute(bid("theirs", "bob", 2_000))  # stored behind our back
    receipt = await actor.execute(bid("mine", "alice", 5_000))
    batches = log.batches(LOT)
    assert [b.command_id for b in batches[2:]] == ["theirs", "mine"]
    assert [b.lot_sequence for b in batches] == [1, 2, 3, 4]
    assert receipt.lot_sequence == 4
    assert (receipt.leader, receipt.price) == ("alice", 2_100)  # decided on the state with bob's bid


async def test_an_unconfirmed_append_that_was_stored_is_answered_from_the_log():
    w = world()
    actor = await opened(w)
    w.log.lose_ack_once = True
    receipt = await actor.execute(bid("b1", "alice", 5_000))
    assert [b.command_id for b in w.log.batches(LOT)].count("b1") == 1
    assert receipt.lot_sequence == 3


async def test_an_unconfirmed_append_that_was_not_stored_is_decided_again():
    w = world()
    actor = await opened(w)
    w.log.refuse_once = True
    receipt = await actor.execute(bid("b1", "alice", 5_000))
    assert [b.command_id for b in w.log.batches(LOT)].count("b1") == 1
    assert receipt.lot_sequence == 3


async def test_a_lot_unknown_to_the_log_and_the_catalog_is_not_found():
    w = world()
    with pytest.raises(NotFound):
        await w.lots.loaded("nope")
    assert len(w.lots) == 0


async def test_a_rebuilt_lot_has_the_same_state_and_receipts():
    log = FakeLog()
    terms = FakeTerms()
    first = world(log=log, terms=terms)
    actor = await opened(first)
    answers = [await actor.execute(bid(f"b{i}", f"bidder-{i % 3}", 1_000 + 700 * i)) for i in range(1, 8)]
    rebuilt = await world(log=log, terms=terms).lots.loaded(LOT)
    assert state_hash(rebuilt.state) == state_hash(actor.state)
    assert rebuilt.lot_sequence == actor.lot_sequence
    assert all(rebuilt.receipts[f"b{i}"] == answers[i - 1] for i in range(1, 8))


async def test_configure_writes_the_first_batch_once():
    w = world()
    w.terms.add(LOT, english())
    info, terms = w.terms.lots[LOT]
    await w.lots.start(PublishedLot(info, terms))
    await w.lots.start(PublishedLot(info, terms))
    assert [(b.command, b.command_id) for b in w.log.batches(LOT)] == [
        ("Configure", "configure"),
        ("OpenLot", f"start:{LOT}"),
    ]


async def test_the_deadline_is_a_wake_up_and_its_tick_closes_the_lot():
    clock = Clock()
    w = world(clock=clock)
    actor = await opened(w, terms=english(opening_bid=1_000, duration_ms=HOUR))
    await actor.execute(bid("b1", "alice", 5_000))
    deadline = actor.state.deadline_ms
    assert deadline == clock.now_ms + HOUR
    clock.advance(HOUR)
    assert w.wakeups.pop_due() == [LOT]
    w.lots.wake(LOT)
    await w.tasks.settle()
    last = w.log.batches(LOT)[-1]
    assert (last.command, last.command_id, last.actor_id) == ("Tick", f"tick:{deadline}", "room")
    assert isinstance(last.events[-1], LotSold)
    assert last.events[-1].at_ms == deadline
    await w.tasks.settle()
    assert (actor.partition, LOT) not in w.active.marked  # ended: no longer indexed


async def test_closing_soon_is_announced_once_before_a_timed_close():
    clock = Clock()
    w = world(clock=clock, closing_soon_ms=60_000)
    actor = await opened(w, terms=english(opening_bid=1_000, duration_ms=HOUR))
    deadline = actor.state.deadline_ms
    clock.advance(HOUR - 60_000)
    w.lots.wake(LOT)
    await w.tasks.settle()
    notices = [e for b in w.log.batches(LOT) for e in b.events if isinstance(e, ClosingSoon)]
    assert notices == [ClosingSoon(LOT, deadline - 60_000, deadline)]
    w.lots.wake(LOT)
    await w.tasks.settle()
    assert len([b for b in w.log.batches(LOT) if b.command == "ClosingSoon"]) == 1


async def test_an_opened_lot_is_indexed_before_its_open_is_stored():
    w = world()
    actor = await opened(w)
    assert (actor.partition, LOT) in w.active.marked


async def test_a_lot_whose_partition_moved_refuses_further_jobs():
    owned = {"yes": True}
    w = world(owns=lambda partition: owned["yes"])
    actor = await opened(w)
    w.lots.drop_partition(actor.partition)
    owned["yes"] = False
    with pytest.raises(NotOwner):
        await actor.execute(bid("b1", "alice", 5_000))
    with pytest.raises(NotOwner):
        w.lots.actor(LOT)


async def test_a_replica_whose_lease_lapsed_writes_nothing_and_fires_no_timer_until_it_holds_the_partition_again():
    owned = {"yes": True}
    clock = Clock()
    w = world(owns=lambda partition: owned["yes"], clock=clock)
    actor = await opened(w, terms=english(opening_bid=1_000, duration_ms=HOUR))
    stored = len(w.log.batches(LOT))
    owned["yes"] = False  # the heartbeat lapsed: the lots stay loaded, but are not ours to change
    with pytest.raises(NotOwner):
        await actor.execute(bid("b1", "alice", 5_000))
    clock.advance(HOUR)
    assert w.wakeups.pop_due() == [LOT]
    w.lots.wake(LOT)  # the deadline comes while the partition is not held: nothing fires
    await w.tasks.settle()
    assert len(w.log.batches(LOT)) == stored
    assert w.wakeups.pop_due() == []
    owned["yes"] = True  # claimed back with its lots kept
    w.lots.rearm(actor.partition)
    assert w.wakeups.pop_due() == [LOT]
    w.lots.wake(LOT)
    await w.tasks.settle()
    assert isinstance(w.log.batches(LOT)[-1].events[-1], LotUnsold)


async def test_a_command_decided_before_the_lease_lapsed_is_not_appended_after_it():
    owned = {"yes": True}
    w = world(owns=lambda partition: owned["yes"], max_in_flight=1)
    first = await opened(w, "lot-a")
    second = await opened(w, "lot-b")
    w.log.delay_s = 0.05
    slow = asyncio.create_task(first.execute(bid("a1", "alice", 2_000)))
    await asyncio.sleep(0.01)  # lot-a's append holds the only slot
    waiting = asyncio.create_task(second.execute(bid("b1", "bob", 2_000)))
    await asyncio.sleep(0.01)  # lot-b decided and waits for the slot
    owned["yes"] = False
    await slow  # already sent: the expected-sequence check is what guards it
    with pytest.raises(NotOwner):
        await waiting
    assert [b.command_id for b in w.log.batches("lot-b")] == ["configure", "open-lot-b"]
    owned["yes"] = True
    again = await second.execute(bid("b1", "bob", 2_000))  # rebuilt from the log, decided afresh
    assert again.lot_sequence == 3


async def test_a_lot_remembers_the_answers_of_its_last_commands_only(monkeypatch):
    monkeypatch.setattr("room.app.lots.RECEIPT_MEMORY", 3)
    w = world()
    actor = await opened(w)
    answers = [await actor.execute(bid(f"b{i}", f"bidder-{i % 2}", 2_000 + 1_000 * i)) for i in range(6)]
    assert list(actor.receipts) == ["b3", "b4", "b5"]
    assert await actor.execute(bid("b4", "bidder-0", 6_000)) == answers[4]
    actor.loaded = False  # a rebuild from the log keeps the same bound
    await actor.read(lambda a: None)
    assert list(actor.receipts) == ["b3", "b4", "b5"]


async def test_a_crier_lot_has_no_deadline_until_the_hammer():
    w = world()
    actor = await opened(w, terms=crier(grace_ms=0))
    assert actor.state.deadline_ms is None
    await actor.execute(bid("b1", "alice", 1_000))
    assert isinstance(w.log.batches(LOT)[-1].events[0], BidAccepted)


async def test_a_tick_with_nothing_due_appends_nothing():
    w = world()
    actor = await opened(w)
    before = w.log.appends
    receipt = await actor.execute(CommandRequest("tick:0", "Tick", "room", "", Tick()))
    assert w.log.appends == before
    assert receipt.lot_sequence == actor.lot_sequence


async def test_an_unsold_lot_leaves_the_index():
    clock = Clock()
    w = world(clock=clock)
    actor = await opened(w, terms=english(duration_ms=1_000))
    clock.advance(1_000)
    w.lots.wake(LOT)
    await w.tasks.settle()
    assert isinstance(w.log.batches(LOT)[-1].events[-1], LotUnsold)
    assert (actor.partition, LOT) not in w.active.marked


async def test_an_overloaded_replica_refuses_new_commands_at_once():
    w = world()
    actor = await opened(w)
    w.lots._deps.max_pending = 2
    w.log.delay_s = 0.05
    outcomes = await asyncio.gather(
        *(actor.execute(bid(f"b{i}", f"bidder-{i}", 2_000 + 500 * i)) for i in range(4)), return_exceptions=True
    )
    refused = [o for o in outcomes if isinstance(o, ResourceExhausted)]
    assert len(refused) == 2
    assert w.lots._deps.pending == 0


async def test_a_tick_that_fails_is_tried_again_with_backoff_until_it_fires():
    clock = Clock()
    w = world(clock=clock)
    actor = await opened(w, terms=english(opening_bid=1_000, duration_ms=HOUR))
    await actor.execute(bid("b1", "alice", 5_000))
    deadline = actor.state.deadline_ms
    clock.advance(HOUR)
    assert w.wakeups.pop_due() == [LOT]
    w.log.fail_appends = 3  # every round of the first wake-up fails: it gives up with UNAVAILABLE
    w.lots.wake(LOT)
    await w.tasks.settle()
    assert w.log.batches(LOT)[-1].command == "PlaceBid"  # nothing fired yet
    assert actor.wake_failures == 1
    clock.advance(100)  # the first retry is due 100 ms later
    assert w.wakeups.pop_due() == [LOT]
    w.lots.wake(LOT)
    await w.tasks.settle()
    last = w.log.batches(LOT)[-1]
    assert (last.command_id, isinstance(last.events[-1], LotSold)) == (f"tick:{deadline}", True)
    assert actor.wake_failures == 0


async def test_a_withdrawn_lot_ends_unsold_once_and_refuses_further_commands():
    w = world()
    actor = await opened(w)
    await actor.execute(bid("b1", "alice", 5_000))
    stop = CommandRequest("w-1", "Withdraw", "admin", "w-1", WithdrawLot("admin", "fake goods"))
    first = await actor.execute(stop)
    assert await actor.execute(stop) == first
    last = w.log.batches(LOT)[-1]
    assert [type(e).__name__ for e in last.events] == ["Withdrawn", "LotUnsold"]
    assert (last.events[0].by, last.events[0].reason, last.events[1].reason) == ("admin", "fake goods", "WITHDRAWN")
    with pytest.raises(FailedPrecondition) as caught:
        await actor.execute(CommandRequest("w-2", "Withdraw", "admin", "w-2", WithdrawLot("admin", "again")))
    assert caught.value.reason == "LOT_CLOSED"


async def test_a_lot_the_catalog_withdraws_before_it_starts_is_configured_and_closed_for_its_watchers():
    w = world()
    info = LotInfo(LOT, "sale-1", "seller")
    await w.lots.withdraw(PublishedLot(info, english()), "sale cancelled")
    batches = w.log.batches(LOT)
    assert [(b.command, b.actor_id) for b in batches] == [("Configure", "room"), ("Withdraw", "catalog")]
    assert (await w.lots.loaded(LOT)).state.phase.value == "unsold"


async def test_a_lot_the_catalog_has_not_started_is_not_found_and_leaves_nothing_behind():
    w = world()
    with pytest.raises(NotFound):
        await w.lots.loaded("never-started")
    assert len(w.lots) == 0


async def test_a_lucky_lot_gets_a_secret_of_the_rooms_in_its_first_batch_and_rebuilds_with_the_same_draw():
    w = world()
    w.terms.add(LOT, lucky())
    w.terms.add("lot-e", english())
    actor = await w.lots.loaded(LOT)
    await actor.execute(open_request())
    [configured] = w.log.batches(LOT)[0].events
    assert isinstance(configured, LotConfigured)
    assert len(configured.draw_secret) == 32
    await w.lots.loaded("lot-e")
    assert w.log.batches("lot-e")[0].events[0].draw_secret == b""  # only lucky lots draw
    rebuilt = await world(log=w.log, terms=w.terms).lots.loaded(LOT)  # another replica, from the log
    assert rebuilt.state == actor.state
    assert rebuilt.state.winning_option == actor.state.winning_option  # type: ignore[union-attr]
