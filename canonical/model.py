"""The canonical model: what an account, contact, ticket, NPS response, opportunity and ask are.

Mappings translate CRM fields into these names; the store has a column for each; the rules
read features computed from them. Fields a mapping adds beyond these go to ``extra``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime"]


class System(StrEnum):
    """A CRM the service syncs with. The value is what the store and the settings say."""

    SALESFORCE = "salesforce"
    GAINSIGHT = "gainsight"


class Entity(StrEnum):
    """A canonical entity; the value is its store table."""

    ACCOUNT = "accounts"
    CONTACT = "contacts"
    NPS_RESPONSE = "nps_responses"
    TICKET = "tickets"
    OPPORTUNITY = "opportunities"
    ASK = "advocacy_asks"


class Status(StrEnum):
    """The advocate status written to the CRM."""

    OPTED_OUT = "Opted Out"
    SUSPENDED = "Suspended"
    NOT_ELIGIBLE = "Not Eligible"
    FATIGUED = "Fatigued"
    ELIGIBLE = "Eligible"


#: The reason given with the Opted Out status of a person erased on request (``forget``).
ERASED_REASON = "Erased on request"

#: Highest first: the first status that applies wins.
STATUS_PRECEDENCE: tuple[Status, ...] = (
    Status.OPTED_OUT,
    Status.SUSPENDED,
    Status.NOT_ELIGIBLE,
    Status.FATIGUED,
    Status.ELIGIBLE,
)

#: Columns every canonical table has; mappings may not target them directly except ``id``.
COMMON_FIELDS: dict[str, FieldType] = {
    "id": "string",
    "source_updated_at": "datetime",
}

#: The canonical fields of each entity and their types (beyond COMMON_FIELDS).
#: ``*_id`` fields hold the *Salesforce* id of the linked record; Gainsight rows carry the link
#: they were matched to (or none) so that features can join across systems.
CANONICAL_FIELDS: dict[Entity, dict[str, FieldType]] = {
    Entity.ACCOUNT: {
        "name": "string",
        "industry": "string",
        "region": "string",
        "segment": "string",
        "account_type": "string",
        "customer_since": "date",
        "health_score": "number",
        "nps_score": "number",
        "payment_overdue": "boolean",
        "churn_risk": "boolean",
        "sf_account_id": "string",
    },
    Entity.CONTACT: {
        "account_id": "string",
        "email": "string",
        "first_name": "string",
        "last_name": "string",
        "title": "string",
        "opted_in": "boolean",
        "opted_out": "boolean",
        "opt_in_date": "date",
        "opt_in_source": "string",
        # consent per activity: a multi-select, values ';'-separated as the CRM APIs give them
        "consent_types": "string",
        "sf_contact_id": "string",
    },
    Entity.NPS_RESPONSE: {
        "contact_id": "string",
        "account_id": "string",
        "person_id": "string",
        "email": "string",
        "score": "integer",
        "responded_at": "datetime",
    },
    Entity.TICKET: {
        "account_id": "string",
        "contact_id": "string",
        "priority": "string",
        "status": "string",
        "is_closed": "boolean",
        "is_escalated": "boolean",
        "opened_at": "datetime",
        "closed_at": "datetime",
    },
    Entity.OPPORTUNITY: {
        "account_id": "string",
        "opportunity_type": "string",
        "stage": "string",
        "is_closed": "boolean",
        "is_won": "boolean",
        "close_date": "date",
        "amount": "number",
        "renewal_risk": "string",
    },
    Entity.ASK: {
        "contact_id": "string",
        "account_id": "string",
        "ask_type": "string",
        "status": "string",
        "requested_date": "date",
        "team": "string",
        # the deal the ask serves (a sales reference): the report's influence on revenue
        "opportunity_id": "string",
    },
}

#: Results the rules produce for each contact and account; the writeback mapping routes them.
RESULT_FIELDS: dict[str, FieldType] = {
    "status": "string",
    "eligible": "boolean",
    "score": "number",
    "reason": "string",
    "next_available": "date",
    # engagement, written whatever the status (contacts; NULL on accounts)
    "recent_asks": "integer",
    "last_ask": "date",
    # the ask types an Eligible contact consented to, as a multi-select value ('A;B')
    "available_for": "string",
}
