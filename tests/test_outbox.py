"""The writeback outbox on a real SQLite file: deterministic keys, planning twice is a no-op,
operators' decisions, and one sender per target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from writeback.deliver import SenderBusy, sender_lock
from writeback.outbox import Outbox, Write, write_key

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _write(ref: str, amount: str = "10.00", due: datetime = NOW) -> Write:
    return Write("pms_payment", "od_a", ref, {"amount": amount}, due)


def test_keys_come_from_what_is_written_never_from_chance():
    assert write_key("pms_payment", "od_a", "ch_1") == _write("ch_1").key
    assert _write("ch_1").key != _write("ch_2").key
    assert Write("commlog", "od_a", "ch_1", {}, NOW).key != _write("ch_1").key
    assert len(_write("ch_1").key) <= 36  # QuickBooks batch requestid limit


def test_planning_the_same_writes_again_changes_nothing(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    assert outbox.plan([_write("ch_1"), _write("ch_2")])["planned"] == 2
    assert outbox.plan([_write("ch_1"), _write("ch_2")]) == {
        "planned": 0,
        "replanned": 0,
        "unchanged": 2,
    }
    # A pending write whose payload changed (a setting changed) takes the new payload...
    assert outbox.plan([_write("ch_1", amount="9.50")])["replanned"] == 1
    assert outbox.get(_write("ch_1").key).payload == {"amount": "9.50"}
    # ...a write already sent keeps what was sent.
    outbox.claim([_write("ch_2").key])
    outbox.done(_write("ch_2").key, "901")
    assert outbox.plan([_write("ch_2", amount="1.00")])["unchanged"] == 1
    assert outbox.get(_write("ch_2").key).payload == {"amount": "10.00"}
    assert [e["event"] for e in outbox.events(_write("ch_2").key)] == [
        "planned",
        "claimed",
        "done",
    ]


def test_due_rows_wait_for_their_time_and_orphaned_sends_come_back(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    later = NOW + timedelta(hours=3)
    outbox.plan([_write("now"), _write("later", due=later)])
    assert [r.source_ref for r in outbox.due("od_a", NOW)] == ["now"]
    outbox.claim([_write("now").key])
    # A sender that died after claiming leaves the row "sending": the next sender gets it back,
    # with its attempt counted (so it looks the record up before sending again).
    again = outbox.due("od_a", NOW)
    assert [(r.source_ref, r.state, r.attempts) for r in again] == [("now", "sending", 1)]
    assert {r.source_ref for r in outbox.due("od_a", later)} == {"now", "later"}


def test_operators_retry_failed_writes_and_skip_unsent_ones_only(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    failed, sent, pending = _write("f"), _write("s"), _write("p")
    outbox.plan([failed, sent, pending])
    outbox.claim([failed.key, sent.key])
    outbox.failed(failed.key, "Open Dental 400: PatNum not found.")
    outbox.done(sent.key, "77")
    assert outbox.retry([failed.key], "dana", "patient merged") == [failed.key]
    assert outbox.get(failed.key).state == "pending"
    assert outbox.get(failed.key).attempts == 1
    with pytest.raises(ValueError, match="is done"):
        outbox.skip([sent.key], "dana")
    with pytest.raises(ValueError, match="operator's name"):
        outbox.skip([pending.key], "")
    assert outbox.skip([pending.key], "dana", "entered by hand") == [pending.key]
    assert outbox.get(pending.key).state == "skipped"
    assert outbox.events(pending.key)[-1]["actor"] == "dana"
    assert outbox.counts() == {"pms_payment": {"pending": 1, "done": 1, "skipped": 1}}


def test_one_sender_per_target(tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    with sender_lock(outbox, "od_a"):
        with pytest.raises(SenderBusy), sender_lock(outbox, "od_a"):
            pass
        with sender_lock(outbox, "books"):  # another target is independent
            pass
    with sender_lock(outbox, "od_a"):  # released
        pass
