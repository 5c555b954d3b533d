from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
import responses
from responses import matchers

from canonical.errors import FatalApiError, MappingError
from connectors.base import Cursor, FieldFilter, StreamSpec
from connectors.gainsight import INVALID_KEY, GainsightConfig, GainsightConnector
from connectors.gainsight.streams import STREAM_CLASSES
from tests.connectors.gainsight.gainsight_fake import (
    BASE,
    QUERY_RE,
    FakeGainsight,
    at,
    envelope,
    make_connector,
    ms,
)

COMPANY = StreamSpec(
    name="accounts",
    object_name="Company",
    fields=("Name", "SfdcAccountId", "CurrentScore"),
    primary_key="Gsid",
    replication_key="ModifiedDate",
)
UNTIL = at("2026-11-23T09:00:00")


def company(gsid: str, when: str, **kw: object) -> dict[str, object]:
    return {"Gsid": gsid, "ModifiedDate": ms(at(when)), "Name": f"Co {gsid}", **kw}


def read_all(stream, since=None, until=UNTIL):  # type: ignore[no-untyped-def]
    batches = list(stream.read(since, until))
    return batches, [r for b in batches for r in b.records]


@responses.activate(assert_all_requests_are_fired=True)
def test_pages_with_limit_and_offset_and_rebases_the_lower_bound() -> None:
    conn, _ = make_connector(page_size=2)
    recs = [
        company("G1", "2026-11-01T00:00:01"),
        company("G2", "2026-11-01T00:00:02"),
        company("G3", "2026-11-01T00:00:02"),
        company("G4", "2026-11-01T00:00:03"),
    ]
    url = f"{BASE}/v1/data/objects/query/Company"
    for page in ([recs[0], recs[1]], [recs[2], recs[3]], []):
        responses.post(url, json=envelope({"records": page}))
    batches, rows = read_all(conn.stream(COMPANY))
    assert [r["Gsid"] for r in rows] == ["G1", "G2", "G3", "G4"]
    assert [b.cursor for b in batches] == [
        Cursor(at("2026-11-01T00:00:02"), "G2"),
        Cursor(at("2026-11-01T00:00:03"), "G4"),
    ]
    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert [b["limit"] for b in bodies] == [2, 2, 2]
    # After page 1 the query restarts at the last row's second with the one row read there;
    # after page 2 at 00:00:03 with one row read there.
    assert [b["offset"] for b in bodies] == [0, 1, 1]
    lowers = [
        [c["value"][0] for c in b["where"]["conditions"] if c["operator"] == "GTE"] for b in bodies
    ]
    assert lowers == [[], ["2026-11-01 00:00:02"], ["2026-11-01 00:00:03"]]
    first = bodies[0]
    assert first["select"][:2] == ["Gsid", "ModifiedDate"]
    assert first["orderBy"] == {"ModifiedDate": "asc", "Gsid": "asc"}
    assert first["where"]["conditions"][0] == {
        "name": "ModifiedDate",
        "alias": "A",
        "value": ["2026-11-23 09:00:00"],
        "operator": "LTE",
    }
    assert responses.calls[0].request.headers["accesskey"] == "sekret-access-key-123"
    assert conn.usage().calls == 3


@responses.activate
def test_many_rows_in_one_second_across_pages_are_read_once_each() -> None:
    recs = [company(f"G{i:03d}", "2026-11-01T00:00:05") for i in range(11)]
    recs += [company(f"H{i:03d}", f"2026-11-01T00:00:{6 + i // 3:02d}") for i in range(9)]
    fake = FakeGainsight(objects={"Company": recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=3)
    batches, rows = read_all(conn.stream(COMPANY))
    assert [r["Gsid"] for r in rows] == [r["Gsid"] for r in recs]
    assert all(len(b.records) <= 3 for b in batches)
    assert max(b["offset"] for b in fake.bodies) <= 11  # offsets stay within one second's ties


@responses.activate
def test_records_equal_to_watermark_are_not_lost() -> None:
    recs = [
        company("A", "2026-11-01T00:00:05"),
        company("B", "2026-11-01T00:00:05"),
        company("C", "2026-11-01T00:00:05"),
        company("D", "2026-11-01T00:00:06"),
    ]
    fake = FakeGainsight(objects={"Company": recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=2)
    since = Cursor(at("2026-11-01T00:00:05"), "B")
    _, rows = read_all(conn.stream(COMPANY), since=since)
    assert [r["Gsid"] for r in rows] == ["C", "D"]
    assert fake.bodies[0]["where"]["conditions"][0]["operator"] == "GTE"
    assert fake.bodies[0]["where"]["conditions"][0]["value"] == ["2026-11-01 00:00:05"]


@responses.activate
def test_sub_second_watermark_and_until_are_exact() -> None:
    base = at("2026-11-01T00:00:05")
    recs = [
        {"Gsid": "A", "ModifiedDate": ms(base + timedelta(milliseconds=100))},
        {"Gsid": "B", "ModifiedDate": ms(base + timedelta(milliseconds=500))},
        {"Gsid": "C", "ModifiedDate": ms(base + timedelta(milliseconds=900))},
    ]
    responses.add_callback(
        responses.POST, QUERY_RE, callback=FakeGainsight(objects={"Company": recs})
    )
    conn, _ = make_connector(page_size=5)
    since = Cursor(base + timedelta(milliseconds=100), "A")
    until = base + timedelta(milliseconds=600)
    _, rows = read_all(conn.stream(COMPANY), since=since, until=until)
    assert [r["Gsid"] for r in rows] == ["B"]


@responses.activate
def test_rows_modified_during_the_read_leave_the_window_without_skipping_others() -> None:
    recs = [company(f"G{i}", f"2026-11-01T00:00:{10 + i:02d}") for i in range(6)]

    def touch_first(fake: FakeGainsight, n: int) -> None:
        if n == 2:  # between page 1 and page 2, G0 is edited: its date jumps past `until`
            fake.objects["Company"][0]["ModifiedDate"] = ms(UNTIL + timedelta(minutes=5))

    fake = FakeGainsight(objects={"Company": recs}, mutate=touch_first)
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=2)
    _, rows = read_all(conn.stream(COMPANY))
    assert [r["Gsid"] for r in rows] == [f"G{i}" for i in range(6)]


@responses.activate
def test_data_as_a_plain_list_is_read_too() -> None:
    recs = [company("G1", "2026-11-01T00:00:01")]
    responses.add_callback(
        responses.POST,
        QUERY_RE,
        callback=FakeGainsight(objects={"Company": recs}, data_as_list=True),
    )
    conn, _ = make_connector(page_size=5)
    _, rows = read_all(conn.stream(COMPANY))
    assert [r["Gsid"] for r in rows] == ["G1"]


@responses.activate
def test_malformed_rows_are_passed_on_marked_not_dropped() -> None:
    page = [
        company("G1", "2026-11-01T00:00:01"),
        "not an object",
        {"Gsid": "G2", "ModifiedDate": "yesterday-ish"},
        {"Gsid": "G3"},
        {"ModifiedDate": ms(at("2026-11-01T00:00:02"))},
        company("G4", "2026-11-01T00:00:03"),
    ]
    responses.post(f"{BASE}/v1/data/objects/query/Company", json=envelope({"records": page}))
    conn, _ = make_connector(page_size=10)
    stream = conn.stream(COMPANY)
    batches, rows = read_all(stream)
    assert len(rows) == 6
    invalid = [r for r in rows if INVALID_KEY in r]
    assert len(invalid) == 4
    assert invalid[0]["_raw"] == "not an object"
    assert "ModifiedDate" in invalid[1][INVALID_KEY]
    assert "Gsid is missing" in invalid[3][INVALID_KEY]
    assert stream.invalid == 4
    assert batches[-1].cursor == Cursor(at("2026-11-01T00:00:03"), "G4")


@responses.activate
def test_unexpected_data_shape_fails_loudly() -> None:
    responses.post(f"{BASE}/v1/data/objects/query/Company", json=envelope({"rows": 3}))
    conn, _ = make_connector()
    with pytest.raises(FatalApiError, match="unexpected 'data' shape"):
        read_all(conn.stream(COMPANY))


@responses.activate
def test_documented_no_data_reply_reads_as_empty() -> None:
    responses.post(
        f"{BASE}/v1/data/objects/query/Company",
        json={
            "result": False,
            "errorCode": "GSOBJ_1XXX",
            "errorDesc": "No data found for given criteria",
            "requestId": "x",
            "data": None,
            "message": None,
        },
    )
    conn, _ = make_connector()
    batches, rows = read_all(conn.stream(COMPANY))
    assert rows == []
    assert batches == []


@responses.activate
def test_ids_are_keyset_paged_on_gsid() -> None:
    recs = [company(f"G{i}", "2026-11-01T00:00:01") for i in range(5)]
    fake = FakeGainsight(objects={"Company": recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=2)
    assert list(conn.stream(COMPANY).ids()) == [["G0", "G1"], ["G2", "G3"], ["G4"]]
    assert [b["offset"] for b in fake.bodies] == [0, 0, 0]
    assert fake.bodies[1]["where"]["conditions"] == [
        {"name": "Gsid", "alias": "A", "value": ["G1"], "operator": "GT"}
    ]
    assert fake.bodies[0]["select"] == ["Gsid"]


@responses.activate
def test_mapping_filters_become_conditions() -> None:
    recs = [
        company("G1", "2026-11-01T00:00:01", Status="Active"),
        company("G2", "2026-11-01T00:00:02", Status="Churned"),
    ]
    fake = FakeGainsight(objects={"Company": recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=5)
    spec = StreamSpec(
        name="accounts",
        object_name="Company",
        fields=("Name",),
        primary_key="Gsid",
        replication_key="ModifiedDate",
        filters=(FieldFilter("Status", "IN", ("Active",)),),
    )
    _, rows = read_all(conn.stream(spec))
    assert [r["Gsid"] for r in rows] == ["G1"]
    assert fake.bodies[0]["where"]["expression"] == "A AND B"


def test_salesforce_default_keys_mean_gainsight_keys() -> None:
    conn, _ = make_connector()
    stream = conn.stream(StreamSpec(name="contacts", object_name="Person", fields=("Email",)))
    assert (stream.pk, stream.rk) == ("Gsid", "ModifiedDate")
    assert type(stream).__name__ == "PersonStream"


@pytest.mark.parametrize("bad", ["Name; DROP", "a b", 'x"y', ""])
def test_field_names_from_mappings_are_validated(bad: str) -> None:
    conn, _ = make_connector()
    spec = StreamSpec(name="accounts", object_name="Company", fields=(bad,), primary_key="Gsid")
    with responses.RequestsMock(), pytest.raises(MappingError):
        list(conn.stream(spec).read(None, UTC_NOW))


UTC_NOW = UNTIL


@responses.activate
def test_request_carries_json_and_user_agent() -> None:
    responses.post(
        f"{BASE}/v1/data/objects/query/Company",
        json=envelope({"records": []}),
        match=[matchers.header_matcher({"Content-Type": "application/json"})],
    )
    conn, _ = make_connector()
    read_all(conn.stream(COMPANY))
    assert "advocate-sync" in responses.calls[0].request.headers["User-Agent"]


@pytest.mark.parametrize("object_name", sorted(STREAM_CLASSES))
@responses.activate
def test_every_declared_stream_yields_ids_and_increasing_cursors(object_name: str) -> None:
    recs = [
        {"Gsid": f"X{i}", "ModifiedDate": ms(at("2026-11-01T00:00:00")) + (i // 2) * 1000}
        for i in range(7)
    ]
    fake = FakeGainsight(objects={object_name: recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=3)
    spec = StreamSpec(
        name="s",
        object_name=object_name,
        fields=(),
        primary_key="Gsid",
        replication_key="ModifiedDate",
    )
    stream = conn.stream(spec)
    assert isinstance(stream, STREAM_CLASSES[object_name])
    batches, rows = read_all(stream)
    assert all(r.get("Gsid") for r in rows)
    cursors = [b.cursor for b in batches]
    assert cursors == sorted(cursors)
    assert len(rows) == 7
    assert all(f"/query/{object_name}" in c.request.url for c in responses.calls)


@responses.activate
def test_filter_lookback_starts_the_server_filter_earlier_but_yields_only_newer_rows() -> None:
    recs = [
        company("OLD", "2026-11-01T09:30:00"),
        company("NEW", "2026-11-01T10:00:06"),
    ]
    fake = FakeGainsight(objects={"Company": recs})
    responses.add_callback(responses.POST, QUERY_RE, callback=fake)
    conn, _ = make_connector(page_size=5)
    stream = conn.stream(COMPANY)
    stream.lookback = timedelta(hours=1)
    since = Cursor(at("2026-11-01T10:00:05"), "X")
    _, rows = read_all(stream, since=since)
    assert [r["Gsid"] for r in rows] == ["NEW"]
    gte = [c for c in fake.bodies[0]["where"]["conditions"] if c["operator"] == "GTE"]
    assert gte[0]["value"] == ["2026-11-01 09:00:05"]


@responses.activate(assert_all_requests_are_fired=True)
def test_a_server_answering_out_of_order_cannot_loop_the_read() -> None:
    url = f"{BASE}/v1/data/objects/query/Company"
    pages = [
        [company("E", "2026-11-01T00:00:05"), company("D", "2026-11-01T00:00:04")],
        [company("C", "2026-11-01T00:00:03"), company("B", "2026-11-01T00:00:02")],
        [company("A", "2026-11-01T00:00:01")],
    ]
    for page in pages:
        responses.post(url, json=envelope({"records": page}))
    conn, _ = make_connector(page_size=2)
    _, rows = read_all(conn.stream(COMPANY))
    assert [r["Gsid"] for r in rows] == ["E", "D", "C", "B", "A"]
    offsets = [json.loads(c.request.body)["offset"] for c in responses.calls]
    assert offsets == [0, 1, 3]


def test_lookback_comes_from_the_config() -> None:
    cfg = GainsightConfig(base_url=BASE, access_key="k", filter_lookback_seconds=86_400)
    with GainsightConnector(cfg) as gs:
        assert gs.stream(COMPANY).lookback == timedelta(days=1)


@responses.activate(assert_all_requests_are_fired=True)
def test_date_and_datetime_filter_values_travel_as_the_text_filters_take() -> None:
    # A mapping may filter on a date or a date-time (YAML gives Python objects); JSON has
    # neither: they go as ``yyyy-MM-dd`` and ``yyyy-MM-dd HH:mm:ss`` (UTC), never crash the call.
    responses.post(
        f"{BASE}/v1/data/objects/query/Company",
        json=envelope({"records": []}),
        match=[
            matchers.json_params_matcher(
                {
                    "where": {
                        "conditions": [
                            {
                                "name": "ModifiedDate",
                                "alias": "A",
                                "value": ["2026-11-23 09:00:00"],
                                "operator": "LTE",
                            },
                            {
                                "name": "OriginalContractDate",
                                "alias": "B",
                                "value": ["2021-03-15"],
                                "operator": "GTE",
                            },
                            {
                                "name": "RenewalDate",
                                "alias": "C",
                                "value": ["2027-01-01 12:30:00"],
                                "operator": "LT",
                            },
                        ],
                        "expression": "A AND B AND C",
                    }
                },
                strict_match=False,
            )
        ],
    )
    conn, _ = make_connector(page_size=5)
    spec = StreamSpec(
        name="accounts",
        object_name="Company",
        fields=("Name",),
        primary_key="Gsid",
        replication_key="ModifiedDate",
        filters=(
            FieldFilter("OriginalContractDate", ">=", (date(2021, 3, 15),)),
            # YAML without an offset gives a naive date-time: read as UTC.
            FieldFilter("RenewalDate", "<", (datetime(2027, 1, 1, 12, 30),)),  # noqa: DTZ001
        ),
    )
    _, rows = read_all(conn.stream(spec))
    assert rows == []
