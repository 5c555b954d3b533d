"""Writeback behaviour against a fake CRM: diff, outbox, guards, retries, crashes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical.errors import RetriableError, WritebackError
from connectors.base import RecordChange, WriteResult
from sync_service.ops.runs import run_record
from sync_service.store.models import (
    accounts,
    runs,
    writeback_log,
    writeback_outbox,
    writeback_state,
)
from sync_service.writeback import history, run_writeback
from sync_service.writeback.targets import WritebackTargetLike
from tests.writeback.fakes import (
    FIELDS,
    OVERRIDE,
    FakeCRM,
    SimulatedCrash,
    blank,
    contact_target,
    evaluation,
    seed_evaluations,
    settings,
    sync_from,
    sync_records,
)

STATUS = FIELDS["status"]
NEXT = FIELDS["next_available"]
REASON = FIELDS["reason"]


def ids(n: int) -> list[str]:
    return [f"003{i:015d}" for i in range(n)]


def write(
    engine: Engine,
    crm: FakeCRM,
    targets: list[WritebackTargetLike] | None = None,
    **kw: Any,
) -> Any:
    opts = {"sleep": lambda _s: None}
    opts.update(kw)
    cfg = opts.pop("cfg", settings())
    return run_writeback(engine, targets or [contact_target()], {"salesforce": crm}, cfg, **opts)


def log_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.select(writeback_log).order_by(writeback_log.c.id)).mappings()
        ]


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        q = sa.select(writeback_outbox).order_by(writeback_outbox.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


def written(engine: Engine) -> dict[tuple[str, str], Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(writeback_state)).mappings()
        return {(r["record_id"], r["field"]): r["value"] for r in rows}


# --- the diff: only what changed --------------------------------------------------------------


def test_first_run_compares_with_the_crm_and_writes_only_changed_fields(engine: Engine):
    a, b, c = ids(3)
    crm_now = {
        a: blank(),  # never written: every non-empty result is a change
        b: {
            STATUS: "Eligible",
            FIELDS["eligible"]: True,
            FIELDS["score"]: 50,
            REASON: "opted in, promoter",
            NEXT: None,
            OVERRIDE: False,
        },  # already right
        c: {
            STATUS: "Eligible",
            FIELDS["eligible"]: True,
            FIELDS["score"]: 50.0,
            REASON: "old reason",
            NEXT: None,
            OVERRIDE: False,
        },  # one field differs
    }
    sync_records(engine, crm_now)
    seed_evaluations(engine, {a: evaluation(), b: evaluation(), c: evaluation()})
    crm = FakeCRM()
    report = write(engine, crm)

    sent = {ch.record_id: ch.fields for _, chs in crm.write_calls for ch in chs}
    assert set(sent) == {a, c}
    assert sent[c] == {REASON: "opted in, promoter"}
    assert sent[a] == {
        STATUS: "Eligible",
        FIELDS["eligible"]: True,
        FIELDS["score"]: 50.0,
        REASON: "opted in, promoter",
    }  # next_available None == CRM None: not sent
    assert report.counts["success"] == 2
    assert report.counts["unchanged"] == 1
    assert report.field_counts["salesforce.Contact.Advocate_Reason__c"] == 2
    log = {(r["record_id"], r["field"]): (r["old_value"], r["new_value"]) for r in log_rows(engine)}
    assert log[(c, REASON)] == ("old reason", "opted in, promoter")
    assert all(r["policy_version"] == "v1" for r in log_rows(engine))


def test_a_second_run_without_changes_makes_no_call(engine: Engine):
    rid = ids(5)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    crm = FakeCRM()
    write(engine, crm)
    assert len(crm.write_calls) == 1
    sync_from(engine, crm)  # the next pull sees what was written

    again = write(engine, crm)
    assert len(crm.write_calls) == 1
    assert again.counts["calls"] == 0
    assert again.counts["changed"] == 0
    assert again.counts["unchanged"] == 5


def test_a_value_that_no_longer_applies_is_cleared(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(
        engine, {rid: evaluation("Fatigued", False, next_available=date(2026, 12, 24))}
    )
    crm = FakeCRM()
    write(engine, crm)
    assert crm.data["Contact"][rid][NEXT] == "2026-12-24"

    seed_evaluations(engine, {rid: evaluation("Eligible", True, next_available=None)})
    write(engine, crm)
    last = crm.write_calls[-1][1][0].fields
    assert last[NEXT] is None
    assert last[STATUS] == "Eligible"
    assert crm.data["Contact"][rid][NEXT] is None
    assert written(engine)[(rid, NEXT)] is None


def test_reason_is_cut_to_the_field_length(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(reason="x" * 255)})
    long_reason = "y" * 400
    with engine.begin() as conn:  # the store column is 255 wide on PostgreSQL; SQLite keeps all
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("UPDATE evaluations SET reason = :r"), {"r": long_reason})
    crm = FakeCRM()
    write(engine, crm)
    assert len(crm.data["Contact"][rid][REASON]) == 255


def test_evaluations_are_read_in_chunks_and_all_written(engine: Engine):
    rid = ids(23)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation(score=float(i)) for i, r in enumerate(rid)})
    crm = FakeCRM()
    report = write(engine, crm, chunk_size=4, cfg=settings(batch_size=10))
    assert report.counts["success"] == 23
    assert [len(chs) for _, chs in crm.write_calls] == [10, 10, 3]
    assert {r: crm.data["Contact"][r][FIELDS["score"]] for r in rid} == {
        r: float(i) for i, r in enumerate(rid)
    }


# --- only mapped fields -----------------------------------------------------------------------


def test_only_mapped_fields_are_written_and_unmapping_a_field_never_clears_it(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(next_available=date(2026, 12, 1))})
    crm = FakeCRM(locks={rid: 99})  # the first run leaves the row pending
    write(engine, crm, cfg=settings(max_attempts=1))
    assert outbox_rows(engine)[0]["fields"][NEXT] == "2026-12-01"

    fewer = {k: v for k, v in FIELDS.items() if k != "next_available"}
    seed_evaluations(engine, {rid: evaluation(next_available=None)})
    crm.locks.clear()
    before = len(crm.write_calls)
    write(engine, crm, [contact_target(fields=fewer)])
    assert len(crm.write_calls) == before + 1
    assert all(NEXT not in ch.fields for _, chs in crm.write_calls[before:] for ch in chs)
    assert NEXT not in crm.data["Contact"][rid]


def test_a_misrouted_result_name_is_refused(engine: Engine):
    bad = contact_target(fields={"statuz": STATUS})
    with pytest.raises(WritebackError, match="statuz"):
        write(engine, FakeCRM(), [bad])


# --- outbox: partial failure, retries, crashes ------------------------------------------------


def test_partial_failure_confirms_the_good_records_and_reports_the_refused(engine: Engine):
    rid = ids(4)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    msg = "Reason must be empty for opted-out contacts"
    crm = FakeCRM(refuse={rid[1]: ("FIELD_CUSTOM_VALIDATION_EXCEPTION", msg)})
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, run=run)

    assert report.counts["success"] == 3
    assert report.counts["failed"] == 1
    assert report.failures[0].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert report.failures[0].message == msg
    states = {r["record_id"]: (r["state"], r["last_error"]) for r in outbox_rows(engine)}
    assert states[rid[1]] == ("failed", f"FIELD_CUSTOM_VALIDATION_EXCEPTION: {msg}")
    assert {r for r, (s, _) in states.items() if s == "done"} == {rid[0], rid[2], rid[3]}
    assert {r for r, _ in written(engine)} == {rid[0], rid[2], rid[3]}
    with engine.connect() as conn:
        rec = conn.execute(sa.select(runs).where(runs.c.id == run.id)).mappings().one()
    assert rec["status"] == "partial"
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in rec["error"]
    assert rec["counts"]["writeback.success"] == 3
    assert rec["counts"]["writeback.failed"] == 1


def test_a_refused_record_is_not_resent_until_its_values_change_or_retry_is_asked(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation()})
    crm = FakeCRM(refuse={rid: ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value")})
    write(engine, crm)
    assert len(crm.write_calls) == 1

    again = write(engine, crm)
    assert len(crm.write_calls) == 1  # the same values would only fail again
    assert again.counts["blocked"] == 1

    crm.refuse.clear()
    write(engine, crm, retry_failed=True)
    assert len(crm.write_calls) == 2
    assert crm.data["Contact"][rid][STATUS] == "Eligible"
    assert [r["state"] for r in outbox_rows(engine)] == ["done"]


def test_a_refused_record_is_resent_when_its_values_change(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(reason="first")})
    crm = FakeCRM(refuse={rid: ("STRING_TOO_LONG", "too long")})
    write(engine, crm)
    crm.refuse.clear()
    seed_evaluations(engine, {rid: evaluation(reason="second")})
    write(engine, crm)
    assert crm.data["Contact"][rid][REASON] == "second"
    assert len(outbox_rows(engine)) == 1


def test_lock_errors_are_retried_with_backoff_until_written(engine: Engine):
    rid = ids(5)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    crm = FakeCRM(locks={rid[0]: 2, rid[3]: 1})
    waits: list[float] = []
    report = write(
        engine, crm, sleep=waits.append, cfg=settings(retry_base_seconds=1.0, max_attempts=5)
    )
    assert report.counts["success"] == 5
    assert report.counts["retried"] == 3  # two records, then one
    assert [len(chs) for _, chs in crm.write_calls] == [5, 2, 1]
    assert len(waits) == 2
    assert 0.5 <= waits[0] <= 1.0
    assert 1.0 <= waits[1] <= 2.0
    assert report.counts["pending"] == 0
    assert len(log_rows(engine)) == 5 * 4


def test_retries_are_bounded_and_the_rest_waits_for_the_next_run(engine: Engine):
    rid = ids(3)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    crm = FakeCRM(locks={rid[1]: 10})
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, run=run, cfg=settings(max_attempts=3))
    assert len(crm.write_calls) == 3
    assert report.counts["pending"] == 1
    assert run.status == "partial"
    pending = [r for r in outbox_rows(engine) if r["state"] == "pending"]
    assert [(r["record_id"], r["attempts"]) for r in pending] == [(rid[1], 3)]
    assert pending[0]["last_error"].startswith("UNABLE_TO_LOCK_ROW")

    crm.locks.clear()
    nxt = write(engine, crm)
    assert nxt.counts["success"] == 1
    assert [ch.record_id for ch in crm.write_calls[-1][1]] == [rid[1]]
    assert crm.data["Contact"][rid[1]][STATUS] == "Eligible"


def test_a_crm_outage_leaves_everything_pending(engine: Engine):
    rid = ids(2)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})

    class DownCRM(FakeCRM):
        def write(self, object_name: str, changes: Any) -> list[WriteResult]:
            raise RetriableError("503 Service Unavailable", system="salesforce", status=503)

    with run_record(engine, "writeback") as run:
        report = write(engine, DownCRM(), run=run)
    assert report.stopped is not None
    assert run.status == "partial"
    assert [r["state"] for r in outbox_rows(engine)] == ["pending", "pending"]
    crm = FakeCRM()
    write(engine, crm)
    assert set(crm.data["Contact"]) == set(rid)


@pytest.mark.parametrize("crash", ["before", "after"])
def test_a_crash_mid_apply_loses_nothing_and_confirms_each_value_once(engine: Engine, crash: str):
    rid = ids(30)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation(score=float(i)) for i, r in enumerate(rid)})
    crm = FakeCRM(**{f"crash_{crash}_call": 2})
    with pytest.raises(SimulatedCrash):
        write(engine, crm, cfg=settings(batch_size=10))
    assert len(written(engine)) == 10 * 4  # the first call's verdicts were committed

    crm.crash_before_call = crm.crash_after_call = None
    write(engine, crm, cfg=settings(batch_size=10))
    assert {r: crm.data["Contact"][r][FIELDS["score"]] for r in rid} == {
        r: float(i) for i, r in enumerate(rid)
    }
    keys = [(r["record_id"], r["field"]) for r in log_rows(engine)]
    assert len(keys) == len(set(keys)) == 30 * 4  # every value confirmed exactly once
    assert {r["state"] for r in outbox_rows(engine)} == {"done"}
    assert len(crm.write_calls) == 4  # 10 + (crashed) 10, then the 20 still pending
    # Killed after the CRM applied the second call: it is sent again (same values, harmless),
    # but confirmed and logged once.
    assert len(crm.applied) == (30 if crash == "before" else 40) * 4


def test_a_repeated_diff_keeps_one_pending_row_with_the_newest_values(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    crm = FakeCRM(locks={rid: 99})
    seed_evaluations(engine, {rid: evaluation(score=10.0, reason="a")})
    write(engine, crm, cfg=settings(max_attempts=1))
    seed_evaluations(engine, {rid: evaluation(score=20.0, reason="a")})
    write(engine, crm, cfg=settings(max_attempts=1))
    write(engine, crm, cfg=settings(max_attempts=1))
    rows = outbox_rows(engine)
    assert len(rows) == 1
    assert rows[0]["state"] == "pending"
    assert rows[0]["fields"][FIELDS["score"]] == 20.0
    assert rows[0]["fields"][REASON] == "a"


def test_a_pending_change_that_is_no_longer_needed_is_dropped(engine: Engine):
    (rid,) = ids(1)
    sync_records(
        engine,
        {
            rid: blank()
            | {STATUS: "Eligible", FIELDS["eligible"]: True, FIELDS["score"]: 50.0, REASON: "r"}
        },
    )
    seed_evaluations(engine, {rid: evaluation(reason="new")})
    crm = FakeCRM(locks={rid: 99})
    write(engine, crm, cfg=settings(max_attempts=1))
    assert len(outbox_rows(engine)) == 1
    seed_evaluations(engine, {rid: evaluation(reason="r")})  # back to what the CRM has
    crm.locks.clear()
    calls = len(crm.write_calls)
    write(engine, crm)
    assert outbox_rows(engine) == []
    assert len(crm.write_calls) == calls


# --- guards: override, drift, blast radius ----------------------------------------------------


def test_an_override_leaves_the_record_alone_and_says_so(engine: Engine):
    a, b = ids(2)
    sync_records(engine, {a: blank() | {OVERRIDE: True}, b: blank()})
    seed_evaluations(engine, {a: evaluation(), b: evaluation()})
    crm = FakeCRM()
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, run=run)
    assert [ch.record_id for _, chs in crm.write_calls for ch in chs] == [b]
    assert report.counts["overridden"] == 1
    assert run.counts["writeback.overridden"] == 1


def test_a_person_s_edit_is_a_conflict_and_is_not_overwritten(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(reason="ours")})
    crm = FakeCRM()
    target = contact_target(owned=False)
    write(engine, crm, [target])
    crm.data["Contact"][rid][REASON] = "a rep's note"  # a person edits the field
    sync_from(engine, crm)

    seed_evaluations(engine, {rid: evaluation(reason="ours, updated")})
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, [target], run=run)
    assert len(crm.write_calls) == 1
    assert crm.data["Contact"][rid][REASON] == "a rep's note"
    assert report.counts["conflicts"] == 1
    c = report.conflicts[0]
    assert (c.field, c.written, c.current, c.desired, c.overwritten) == (
        REASON,
        "ours",
        "a rep's note",
        "ours, updated",
        False,
    )
    assert run.counts["writeback.conflicts"] == 1


def test_an_owned_field_edited_by_a_person_is_overwritten_and_reported(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(status="Fatigued", eligible=False)})
    crm = FakeCRM()
    write(engine, crm)
    crm.data["Contact"][rid][STATUS] = "Eligible"
    sync_from(engine, crm)
    report = write(engine, crm)
    assert crm.data["Contact"][rid][STATUS] == "Fatigued"
    assert report.counts["conflicts"] == 1
    assert report.counts["overwritten"] == 1
    last = [r for r in log_rows(engine) if r["field"] == STATUS][-1]
    assert (last["old_value"], last["new_value"]) == ("Eligible", "Fatigued")


def test_a_sync_older_than_the_last_write_is_not_mistaken_for_an_edit(engine: Engine):
    (rid,) = ids(1)
    old_sync = datetime.now(UTC) - timedelta(hours=1)
    sync_records(engine, {rid: blank()}, synced_at=old_sync)
    seed_evaluations(engine, {rid: evaluation(reason="one")})
    crm = FakeCRM()
    write(engine, crm, [contact_target(owned=False)])
    # No sync since: the store still shows the blank fields read before the write.
    seed_evaluations(engine, {rid: evaluation(reason="two")})
    report = write(engine, crm, [contact_target(owned=False)])
    assert report.counts["conflicts"] == 0
    assert crm.data["Contact"][rid][REASON] == "two"


def test_a_person_setting_the_desired_value_costs_no_call(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(reason="one")})
    crm = FakeCRM()
    write(engine, crm, [contact_target(owned=False)])
    crm.data["Contact"][rid][REASON] = "two"
    sync_from(engine, crm)
    seed_evaluations(engine, {rid: evaluation(reason="two")})
    report = write(engine, crm, [contact_target(owned=False)])
    assert len(crm.write_calls) == 1
    assert report.counts["conflicts"] == 0
    assert report.counts["adopted"] == 1
    assert written(engine)[(rid, REASON)] == "two"


def _statuses(engine: Engine, crm: FakeCRM, n: int, changed: int) -> list[str]:
    rid = ids(n)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    write(engine, crm)
    sync_from(engine, crm)
    seed_evaluations(
        engine,
        {
            r: evaluation("Suspended", False) if i < changed else evaluation()
            for i, r in enumerate(rid)
        },
    )
    return rid


def test_a_run_changing_too_many_statuses_is_held_until_confirmed(engine: Engine):
    crm = FakeCRM()
    rid = _statuses(engine, crm, 100, changed=30)
    calls = len(crm.write_calls)
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, run=run)
    assert report.held is not None
    assert "30 of 100" in report.held
    assert "--confirm" in report.held
    assert len(crm.write_calls) == calls
    assert outbox_rows(engine) == [] or {r["state"] for r in outbox_rows(engine)} == {"done"}
    with engine.connect() as conn:
        rec = conn.execute(sa.select(runs).where(runs.c.id == run.id)).mappings().one()
    assert rec["status"] == "held"
    assert "--confirm" in rec["error"]

    again = write(engine, crm)  # still held on the next scheduled run
    assert again.held is not None

    released = write(engine, crm, confirm=True)
    assert released.held is None
    assert released.counts["success"] == 30
    assert [crm.data["Contact"][r][STATUS] for r in rid[:30]] == ["Suspended"] * 30


def test_a_run_under_the_share_is_not_held(engine: Engine):
    crm = FakeCRM()
    _statuses(engine, crm, 100, changed=20)
    report = write(engine, crm)
    assert report.held is None
    assert report.counts["success"] == 20


def test_small_orgs_are_not_held(engine: Engine):
    crm = FakeCRM()
    _statuses(engine, crm, 10, changed=9)
    report = write(engine, crm, cfg=settings(min_records_for_guard=50))
    assert report.held is None


def test_filling_empty_status_fields_on_the_first_run_is_not_held(engine: Engine):
    rid = ids(100)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    report = write(engine, FakeCRM())
    assert report.held is None
    assert report.counts["success"] == 100


# --- dry run, other targets, records that are gone --------------------------------------------


def test_dry_run_prints_what_would_change_and_writes_nothing(engine: Engine):
    rid = ids(3)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})
    report = run_writeback(engine, [contact_target()], {}, settings(), dry_run=True)
    assert report.counts["changed"] == 3
    assert report.field_counts["salesforce.Contact.Advocate_Status__c"] == 3
    assert report.samples[0].changes[STATUS] == (None, "Eligible")
    assert outbox_rows(engine) == []
    assert written(engine) == {}


def test_deleted_and_unsynced_records_are_skipped(engine: Engine):
    a, b, c = ids(3)
    sync_records(engine, {a: blank(), b: blank()}, deleted=frozenset({b}))
    seed_evaluations(engine, {a: evaluation(), b: evaluation(), c: evaluation()})
    crm = FakeCRM()
    report = write(engine, crm)
    assert [ch.record_id for _, chs in crm.write_calls for ch in chs] == [a]
    assert report.counts["missing"] == 2


def test_gainsight_companies_are_a_second_target_through_the_same_path(engine: Engine):
    sf_ids = ["001000000000000AAA", "001000000000000AAB"]
    sync_records(engine, {f: blank() for f in sf_ids}, table=accounts)
    sync_records(
        engine,
        {"GS1": {"Advocate_Status": None}, "GS2": {"Advocate_Status": "Eligible"}},
        table=accounts,
        source="gainsight",
        links={"GS1": sf_ids[0], "GS2": sf_ids[1]},
    )
    seed_evaluations(engine, {f: evaluation() for f in sf_ids}, entity_type="account")
    sf_target = contact_target()
    sf_target = type(sf_target)(
        target="salesforce",
        entity="account",
        object_name="Account",
        fields=dict(FIELDS),
        owned=True,
        override_field=None,
    )
    gs_target = type(sf_target)(
        target="gainsight",
        entity="account",
        object_name="Company",
        fields={"status": "Advocate_Status"},
        owned=True,
        override_field=None,
    )
    sf, gs = FakeCRM(), FakeCRM()
    gs.system = "gainsight"  # type: ignore[misc]
    report = run_writeback(
        engine,
        [sf_target, gs_target],
        {"salesforce": sf, "gainsight": gs},
        settings(),
        sleep=lambda _s: None,
    )
    assert gs.data == {"Company": {"GS1": {"Advocate_Status": "Eligible"}}}
    assert set(sf.data["Account"]) == set(sf_ids)
    assert report.counts["success"] == 3
    assert [h["target"] for h in history(engine, "GS1")] == ["gainsight"]


def test_a_target_without_a_connector_is_a_clear_error(engine: Engine):
    with pytest.raises(WritebackError, match="no salesforce connector"):
        run_writeback(engine, [contact_target()], {}, settings())


def test_history_shows_every_value_written_newest_first(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(reason="one", policy_version="v1")})
    crm = FakeCRM()
    write(engine, crm)
    seed_evaluations(engine, {rid: evaluation(reason="two", policy_version="v2")})
    write(engine, crm)
    reasons = [
        (h["old_value"], h["new_value"], h["policy_version"])
        for h in history(engine, rid)
        if h["field"] == REASON
    ]
    assert reasons == [("one", "two", "v2"), (None, "one", "v1")]


def test_write_results_without_ids_are_matched_in_order(engine: Engine):
    rid = ids(2)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})

    class Anonymous(FakeCRM):
        def write(self, object_name: str, changes: Any) -> list[WriteResult]:
            super().write(object_name, changes)
            return [WriteResult("", True), WriteResult("", False, "X", "no", retryable=False)]

    report = write(engine, Anonymous())
    assert report.counts["success"] == 1
    assert report.counts["failed"] == 1
    assert report.failures[0].record_id == rid[1]


def test_a_missing_verdict_counts_as_not_written(engine: Engine):
    rid = ids(2)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})

    class Forgetful(FakeCRM):
        def write(self, object_name: str, changes: Any) -> list[WriteResult]:
            return super().write(object_name, changes)[:1]

    report = write(engine, Forgetful(), cfg=settings(max_attempts=1))
    assert report.counts["success"] == 1
    assert report.counts["pending"] == 1
    assert {r for r, _ in written(engine)} == {rid[0]}


def test_record_change_is_what_the_connector_receives(engine: Engine):
    (rid,) = ids(1)
    sync_records(engine, {rid: blank()})
    seed_evaluations(engine, {rid: evaluation(next_available=date(2027, 1, 2))})
    crm = FakeCRM()
    write(engine, crm)
    change = crm.write_calls[0][1][0]
    assert isinstance(change, RecordChange)
    assert change.fields[NEXT] == "2027-01-02"
    assert change.fields[FIELDS["eligible"]] is True


def test_a_call_refused_as_a_whole_stops_the_run_instead_of_retrying_every_batch(engine: Engine):
    rid = ids(6)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation() for r in rid})

    class Spent(FakeCRM):
        def write(self, object_name: str, changes: Any) -> list[WriteResult]:
            self.write_calls.append((object_name, list(changes)))
            return [
                WriteResult(c.record_id, False, "BUDGET_SHARE", "budget spent", retryable=True)
                for c in changes
            ]

    crm = Spent()
    with run_record(engine, "writeback") as run:
        report = write(engine, crm, run=run, cfg=settings(batch_size=2))
    assert len(crm.write_calls) == 1
    assert report.stopped is not None
    assert "BUDGET_SHARE" in report.stopped
    assert run.status == "partial"
    assert report.counts["pending"] == 6


def test_contacts_are_sent_with_their_parent_accounts_when_the_connector_can_group(
    engine: Engine,
):
    rid = ids(3)
    sync_records(engine, {r: blank() for r in rid})
    with engine.begin() as conn:
        for i, r in enumerate(rid):
            conn.execute(
                sa.text("UPDATE contacts SET account_id = :a WHERE id = :i"),
                {"a": f"001{i % 2}", "i": r},
            )
    seed_evaluations(engine, {r: evaluation() for r in rid})
    seen: list[dict[str, str] | None] = []

    class Grouping(FakeCRM):
        def write(  # type: ignore[override]
            self, object_name: str, changes: Any, *, parents: dict[str, str] | None = None
        ) -> list[WriteResult]:
            seen.append(parents)
            return super().write(object_name, changes)

    write(engine, Grouping())
    assert seen == [{rid[0]: "0010", rid[1]: "0011", rid[2]: "0010"}]


def test_a_pending_row_with_only_unmapped_fields_is_closed_without_a_call(engine: Engine):
    (rid,) = ids(1)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(writeback_outbox).values(
                target="salesforce",
                object_name="Contact",
                record_id=rid,
                fields={"Old_Field__c": "x"},
                old_values={},
                state="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
    crm = FakeCRM()
    write(engine, crm)
    assert crm.write_calls == []
    assert [r["state"] for r in outbox_rows(engine)] == ["done"]


def test_each_api_call_commits_before_the_next_so_a_crash_re_sends_one_call(engine: Engine):
    # One outbox batch of 1,000 rows, sent as five calls of 200 by a connector that reports
    # each call (``on_call``); the process dies during the fourth call.
    rid = ids(1000)
    sync_records(engine, {r: blank() for r in rid})
    seed_evaluations(engine, {r: evaluation(score=float(i % 90)) for i, r in enumerate(rid)})

    class PerCallCRM(FakeCRM):
        def write(  # type: ignore[override]
            self, object_name: str, changes: Any, on_call: Any = None
        ) -> list[WriteResult]:
            results: list[WriteResult] = []
            for n, start in enumerate(range(0, len(changes), 200), 1):
                if n == 4:
                    raise SimulatedCrash("killed while the fourth call was in flight")
                part = super().write(object_name, changes[start : start + 200])
                on_call(part)
                results += part
            return results

    crm = PerCallCRM()
    with pytest.raises(SimulatedCrash):
        write(engine, crm, cfg=settings(batch_size=10_000, min_records_for_guard=10**6))
    done = [r for r in outbox_rows(engine) if r["state"] == "done"]
    assert len(done) == 600  # three calls confirmed and committed, not lost with the fourth

    again = FakeCRM()
    write(engine, again, cfg=settings(batch_size=10_000, min_records_for_guard=10**6))
    assert len(again.write_calls[0][1]) == 400  # nothing confirmed is sent again
