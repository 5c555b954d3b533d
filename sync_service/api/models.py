"""Request and response bodies of the HTTP API (they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_Strict = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AskCheck(BaseModel):
    """Which contact (by Salesforce id or email), which kind of ask, for which team."""

    model_config = _Strict

    contact_id: str | None = Field(None, min_length=15, max_length=18, examples=["003..."])
    email: str | None = Field(None, min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    ask_type: str = Field(min_length=1, max_length=255, examples=["Reference Call"])
    team: str | None = Field(
        None, min_length=1, max_length=64, description="defaults to the token's team"
    )

    @model_validator(mode="after")
    def _one_contact(self) -> AskCheck:
        if (self.contact_id is None) == (self.email is None):
            msg = "give exactly one of contact_id or email"
            raise ValueError(msg)
        return self

    @property
    def contact(self) -> str:
        """The contact id or email."""
        return self.contact_id or self.email or ""


class AskCreate(AskCheck):
    """An ask to log: the check's fields, who asks, and an optional override."""

    requested_by: str = Field(min_length=1, max_length=255, examples=["jane.doe"])
    opportunity_id: str | None = Field(
        None,
        min_length=15,
        max_length=18,
        pattern=r"^[A-Za-z0-9]+$",
        examples=["006..."],
        description="the Salesforce opportunity the ask serves (written to Opportunity__c)",
    )
    override_reason: str | None = Field(
        None,
        min_length=3,
        max_length=1000,
        description="log the ask even if the policy refuses it; the override is audited",
    )


class CapOut(BaseModel):
    """One cap recounted for the contact (or its account)."""

    id: str
    scope: str
    count: int
    max_asks: int
    window_days: int
    binding: bool
    blocks: bool
    words: str
    until: date | None


class Verdict(BaseModel):
    """The guard's answer."""

    allowed: bool
    status: str
    reasons: list[str]
    next_available: date | None
    contact_id: str
    account_id: str | None
    caps: list[CapOut] = Field(default_factory=list)


class AskLogged(Verdict):
    """A logged ask (201)."""

    id: str
    override: bool
    opportunity_id: str | None = None


class Refused(Verdict):
    """A refused ask (409): the one-line ``detail`` and the reasons."""

    detail: str


class Problem(BaseModel):
    """An error: one line saying what is wrong and what to do."""

    detail: str


class Advocate(BaseModel):
    """A contact's or account's verdict, why, its cap counts and the asks that counted."""

    entity_type: str
    id: str
    status: str | None
    reason: str | None
    next_available: date | None
    score: float | None
    caps: list[CapOut]
    asks: list[dict[str, Any]]
    explain: dict[str, Any]


class Reference(BaseModel):
    """An advocate proposed on a deal by the reference matching, with the terms that matched."""

    contact_id: str
    account_id: str | None
    score: float
    terms: dict[str, str]


class Me(BaseModel):
    """The calling token."""

    name: str
    team: str | None
    role: str


class TokenOut(BaseModel):
    """A token's record (never the token)."""

    name: str
    team: str | None
    role: str
    created_at: str
    revoked: bool


class ErasureRequest(BaseModel):
    """Whom to erase (a CRM id or an e-mail, exactly one) and why (kept in the audit)."""

    model_config = _Strict

    contact_id: str | None = Field(
        None,
        min_length=15,
        max_length=64,
        description="a Salesforce contact id (15 or 18 characters) or a Gainsight person id",
    )
    email: str | None = Field(None, min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    reason: str = Field(min_length=1, max_length=1000, examples=["DSR-118"])

    @model_validator(mode="after")
    def _one_subject(self) -> ErasureRequest:
        if (self.contact_id is None) == (self.email is None):
            msg = "give exactly one of contact_id or email"
            raise ValueError(msg)
        return self


class Erasure(BaseModel):
    """What an erasure did (no personal data): its audit id and the rows changed per table."""

    erasure_id: int
    erased_at: str
    found: bool = Field(description="false: not in the store yet, tombstoned all the same")
    tables: dict[str, int]
    tombstones: int
    log_emptied: bool
