"""Store tables: the canonical entities and the service's own bookkeeping.

The canonical tables are built from :data:`canonical.model.CANONICAL_FIELDS`, so the model and
the store cannot drift apart; every change still lands as an explicit Alembic migration.

Each canonical row is keyed by ``(source, id)``: the system it came from and its id there.
Gainsight rows carry the Salesforce id they were matched to (``sf_account_id``,
``sf_contact_id``, ``contact_id``), so features join across systems in SQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from canonical.model import CANONICAL_FIELDS, Entity, FieldType
from sync_service.store.types import JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_COLUMN_TYPES: dict[FieldType, Any] = {
    "string": sa.String(255),
    "integer": sa.Integer(),
    "number": sa.Float(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "datetime": UTCDateTime(),
}

#: Columns worth an index: the joins and lookups the features and identity matching make.
_INDEXED = {
    Entity.ACCOUNT: ("sf_account_id",),
    Entity.CONTACT: ("email", "sf_contact_id"),
    Entity.NPS_RESPONSE: ("contact_id",),
    Entity.TICKET: (),
    Entity.OPPORTUNITY: (),
    Entity.ASK: ("contact_id",),
}

#: Per table, ``account_id`` first and then every column the features read: the features read
#: a range of accounts at a time, and a covering index serves that range without a lookup
#: into the table per row (on SQLite about 20 times fewer page reads). It also serves every
#: lookup by ``account_id`` alone, so it replaces the plain ``account_id`` index.
ACCOUNT_COVERING: dict[Entity, tuple[str, ...]] = {
    Entity.CONTACT: (
        "account_id",
        "id",
        "source",
        "deleted",
        "opted_in",
        "opted_out",
        "opt_in_date",
        "consent_types",
    ),
    Entity.NPS_RESPONSE: ("account_id", "contact_id", "deleted", "score", "responded_at", "id"),
    Entity.TICKET: ("account_id", "deleted", "is_closed", "is_escalated", "priority", "opened_at"),
    Entity.OPPORTUNITY: (
        "account_id",
        "deleted",
        "is_closed",
        "opportunity_type",
        "close_date",
        "renewal_risk",
        "id",
    ),
    Entity.ASK: (
        "account_id",
        "contact_id",
        "deleted",
        "requested_date",
        "ask_type",
        "team",
        "status",
        "id",
    ),
}


def _canonical_table(entity: Entity) -> sa.Table:
    columns: list[sa.Column[object]] = [
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
    ]
    for name, ftype in CANONICAL_FIELDS[entity].items():
        columns.append(sa.Column(name, _COLUMN_TYPES[ftype], index=name in _INDEXED[entity]))
    columns += [
        sa.Column("source_updated_at", UTCDateTime()),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("merged_into", sa.String(64)),
        sa.Column("extra", JSONType),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
    ]
    table = sa.Table(entity.value, metadata, *columns)
    if entity in ACCOUNT_COVERING:
        cols = [table.c[name] for name in ACCOUNT_COVERING[entity]]
        sa.Index(f"ix_{entity.value}_account_cover", *cols)  # bound to the table by its columns
    return table


accounts = _canonical_table(Entity.ACCOUNT)
contacts = _canonical_table(Entity.CONTACT)
nps_responses = _canonical_table(Entity.NPS_RESPONSE)
tickets = _canonical_table(Entity.TICKET)
opportunities = _canonical_table(Entity.OPPORTUNITY)
advocacy_asks = _canonical_table(Entity.ASK)
#: The report reads the asks of a window of days (migration 0007): this index holds every
#: column it reads, so a window is one range of it.
sa.Index(
    "ix_advocacy_asks_requested",
    advocacy_asks.c.requested_date,
    advocacy_asks.c.deleted,
    advocacy_asks.c.contact_id,
    advocacy_asks.c.team,
    advocacy_asks.c.ask_type,
    advocacy_asks.c.status,
)
#: The influence section asks, per opportunity, whether an ask is linked to it (migration 0010).
sa.Index("ix_advocacy_asks_opportunity", advocacy_asks.c.opportunity_id, advocacy_asks.c.deleted)


#: Identity linking (sync/identity.py) finds the rows of one source with an e-mail by its
#: normalised form, and a person's NPS answers, by these (migration 0014). The source is in
#: the key so that SQLite, without statistics, prefers it to the primary key's first column.
#: Expression indexes: SQLite cannot reflect them, so index checks read the catalog by name.
def email_key(col: Any) -> sa.ColumnElement[str]:
    """An e-mail's normalised form, as the e-mail key indexes hold it: compare by this only."""
    key: sa.ColumnElement[str] = sa.func.lower(sa.func.trim(col))
    return key


EMAIL_KEY_INDEXES = tuple(
    sa.Index(f"ix_{t.name}_email_key", email_key(t.c.email), t.c.source)
    for t in (contacts, nps_responses)
)
sa.Index("ix_nps_responses_person_id", nps_responses.c.person_id)

CANONICAL_TABLES: dict[Entity, sa.Table] = {
    Entity.ACCOUNT: accounts,
    Entity.CONTACT: contacts,
    Entity.NPS_RESPONSE: nps_responses,
    Entity.TICKET: tickets,
    Entity.OPPORTUNITY: opportunities,
    Entity.ASK: advocacy_asks,
}

#: Watermarks: one row per (connector, stream), committed with the rows they cover.
sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("connector", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("cursor_updated_at", UTCDateTime()),
    sa.Column("cursor_id", sa.String(64)),
    sa.Column("last_full_sync_at", UTCDateTime()),
    sa.Column("last_reconciled_at", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # What the stream read last time (objects, fields, filters): a changed mapping means rows
    # already stored lack the new fields, so the stream is read again in full.
    sa.Column("mapping_digest", sa.String(64)),
    # Completeness: set when a sync of the stream starts, cleared when it finishes. While set,
    # the rows are a partial picture (budget spent, retries exhausted, process killed) and the
    # evaluation holds every verdict that reads the stream's table (sync/completeness.py).
    sa.Column("entity", sa.String(32)),
    sa.Column("incomplete_since", UTCDateTime()),
    sa.Column("incomplete_reason", sa.Text()),
    # The run start time of the last read that finished: the overlap only needs to reach back
    # from the cursor as far as rows committed after that read could be stamped.
    sa.Column("read_until", UTCDateTime()),
)

#: One row per job run: what ran, how it ended, and its figures.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),  # running, success, partial, failed, held
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer()),
    sa.Column("counts", JSONType),
    sa.Column("api_calls", JSONType),
    sa.Column("error", sa.Text()),
    sa.Column("config_errors", JSONType),
)

#: The current verdict per contact and account.
evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("entity_type", sa.String(16), primary_key=True),  # contact, account
    sa.Column("entity_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("eligible", sa.Boolean(), nullable=False),
    sa.Column("score", sa.Float()),
    sa.Column("reason", sa.String(255)),
    sa.Column("next_available", sa.Date()),
    sa.Column("recent_asks", sa.Integer()),
    sa.Column("last_ask", sa.Date()),
    sa.Column("available_for", sa.String(255)),
    sa.Column("details", JSONType),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("policy_hash", sa.String(64)),
    sa.Column("evaluated_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    # The first day the verdict may change with time alone (a cap window lets an ask go, an
    # NPS answer ages past a window...): re-evaluated then, with no data change (migration
    # 0012; rules/horizon.py). NULL: nothing time-based can change it.
    sa.Column("valid_until", sa.Date(), index=True),
)

#: Change marks (migration 0012): one row per stored row whose canonical values changed, written
#: in the ingest's transaction; the evaluation re-evaluates the accounts they reach and deletes
#: the marks it read in its last transaction. ``account_id``: the account the row was filed
#: under before the change, when that differs (both accounts' verdicts may change).
#: ``entity = '*'`` asks for a full evaluation (a first load, a stream read again in full).
eval_marks = sa.Table(
    "eval_marks",
    metadata,
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(64)),
    sa.Column("marked_at", UTCDateTime(), nullable=False),
    # identity marks of Salesforce contacts: the e-mail before the change (migration 0014)
    sa.Column("prior", sa.String(255)),
    # the scope and the writeback find a table's marked rows through it (either join order)
    sa.Index("ix_eval_marks_key", "entity", "source", "id"),
)

#: The live Gainsight rows identity linking could not link (migration 0014): ``entity`` is the
#: table, ``ambiguous`` whether several Salesforce contacts share the row's e-mail. Kept as
#: each linking leaves them (sync/identity.py), so an incremental linking counts the matched,
#: unmatched and ambiguous rows of the whole table without classifying every row again.
identity_unlinked = sa.Table(
    "identity_unlinked",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("ambiguous", sa.Boolean(), nullable=False),
)

#: The account ids (and ids of contacts without an account) one incremental evaluation reads;
#: a real table, not a temporary one, because the features' readers use connections of their
#: own. Filled and emptied under the evaluate stage lock.
eval_scope = sa.Table(
    "eval_scope",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
)

#: Status changes over time: who changed from what to what, when and why.
evaluation_history = sa.Table(
    "evaluation_history",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("entity_type", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("old_status", sa.String(32)),
    sa.Column("new_status", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(255)),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("policy_hash", sa.String(64)),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    sa.Index("ix_evaluation_history_entity", "entity_type", "entity_id"),
    # The report's reads (migration 0007): changes week by week, and a status as of a moment.
    sa.Index(
        "ix_evaluation_history_timeline", "entity_type", "changed_at", "old_status", "new_status"
    ),
    sa.Index("ix_evaluation_history_asof", "entity_type", "entity_id", "changed_at", "new_status"),
)

#: Field changes waiting for the CRM's confirmation; survives a crash.
writeback_outbox = sa.Table(
    "writeback_outbox",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(16), nullable=False),  # salesforce, gainsight
    sa.Column("object_name", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("fields", JSONType, nullable=False),  # CRM field -> new value
    sa.Column("old_values", JSONType),
    sa.Column("state", sa.String(16), nullable=False, index=True),  # pending, failed, done
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text()),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    # update: change fields of an existing record; create: insert a new one (an ask logged
    # through the API), found again by its external id if a crash hid the CRM's answer.
    sa.Column("operation", sa.String(8), nullable=False, server_default="update"),
    sa.Index("ix_writeback_outbox_record", "target", "object_name", "record_id"),
    # At most one open (pending or failed) row per record: repeats replace it (migration 0002).
    sa.Index(
        "uq_writeback_outbox_open",
        "target",
        "object_name",
        "record_id",
        unique=True,
        sqlite_where=sa.text("state <> 'done'"),
        postgresql_where=sa.text("state <> 'done'"),
    ),
)

#: The value of each owned CRM field as last confirmed written (the diff's baseline).
writeback_state = sa.Table(
    "writeback_state",
    metadata,
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("object_name", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("field", sa.String(128), primary_key=True),
    sa.Column("value", JSONType),
    sa.Column("confirmed_at", UTCDateTime(), nullable=False),
)

#: Audit: every value the CRM confirmed, with the policy that produced it.
writeback_log = sa.Table(
    "writeback_log",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(16), nullable=False),
    sa.Column("object_name", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("field", sa.String(128), nullable=False),
    sa.Column("old_value", JSONType),
    sa.Column("new_value", JSONType),
    sa.Column("policy_version", sa.String(64)),
    sa.Column("written_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    sa.Index("ix_writeback_log_record", "target", "object_name", "record_id"),
)

#: Records that could not be used, with the reason; kept for an admin to fix at the source.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("connector", sa.String(32), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(64)),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("payload", JSONType),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    sa.Column("resolved", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index("ix_quarantine_record", "connector", "stream", "record_id"),
)

#: Privacy: one row per erasure (``sync-service forget``), what it touched and why, without the
#: person's data: the subject is kept only as the keyed hash of the key it was asked by.
privacy_erasures = sa.Table(
    "privacy_erasures",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("erased_at", UTCDateTime(), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("subject_digest", sa.String(64), nullable=False),
    sa.Column("tables", JSONType, nullable=False),  # table -> rows changed
    sa.Column("via", sa.String(16), nullable=False),  # cli, api
)

#: Privacy: keyed hashes (HMAC-SHA256) of an erased person's CRM ids and normalised e-mails.
#: A record that hashes to one of them is stored without its personal data, whatever the CRM
#: still holds. ``contact_id`` is the person's Salesforce contact id (kept in ``contacts`` too),
#: so a later answer that names them only by e-mail still counts for their account.
privacy_tombstones = sa.Table(
    "privacy_tombstones",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # id, email
    sa.Column("contact_id", sa.String(64)),
    sa.Column("erasure_id", sa.Integer()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

#: Privacy retention: when a record was first seen deleted in the CRM (its personal data is
#: purged ``privacy.deleted_days`` later); a record restored in the CRM loses its row.
privacy_deleted_seen = sa.Table(
    "privacy_deleted_seen",
    metadata,
    sa.Column("table_name", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("seen_at", UTCDateTime(), nullable=False),
    sa.Column("purged_at", UTCDateTime()),
)

#: Key in a canonical row's ``extra`` marking a person erased on request (``forget``): the row
#: keeps its ids and counts, its personal columns are empty, and the evaluation makes it
#: Opted Out whatever the CRM says.
ERASED_KEY = "_erased"


#: API tokens: only a SHA-256 of each token is kept; the token itself is shown once at creation.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("team", sa.String(64)),
    sa.Column("role", sa.String(16), nullable=False),  # admin, team, viewer
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

#: Every check and every logged ask through the API or the CLI: who, when, what, the answer.
ask_audit = sa.Table(
    "ask_audit",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # check, ask
    sa.Column("result", sa.String(16), nullable=False),  # allowed, refused, logged, override
    sa.Column("team", sa.String(64)),
    sa.Column("token_name", sa.String(64)),
    sa.Column("contact_id", sa.String(64)),
    sa.Column("account_id", sa.String(64)),
    sa.Column("ask_type", sa.String(255)),
    sa.Column("ask_id", sa.String(64)),
    sa.Column("requested_by", sa.String(255)),
    sa.Column("override_reason", sa.Text()),
    sa.Column("reasons", JSONType),
    sa.Index("ix_ask_audit_contact", "contact_id"),
    sa.Index("ix_ask_audit_at", "at"),
)

#: Reference matching: the advocates proposed on each open deal (sync_service/match), best first.
#: Rewritten per deal every match run; a deal no longer matched loses its rows.
match_suggestions = sa.Table(
    "match_suggestions",
    metadata,
    sa.Column("opportunity_id", sa.String(64), primary_key=True),
    sa.Column("rank", sa.Integer(), primary_key=True),
    sa.Column("contact_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(64)),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("similarity", sa.Float(), nullable=False),
    sa.Column("terms", JSONType),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.Integer()),
    sa.Index("ix_match_suggestions_contact", "contact_id"),
    sa.Index("ix_match_suggestions_run", "run_id"),
)
