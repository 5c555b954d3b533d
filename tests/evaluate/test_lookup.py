"""Finding the contact or account a person means: 15/18-character ids, e-mails, names."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from canonical.model import Entity
from sync_service.evaluate.lookup import find, to_18
from tests.store_seed import seed


@pytest.mark.parametrize(
    ("short", "long"),
    [
        # examples whose 18-character forms Salesforce documents and tools agree on
        ("001A000000K8D3E", "001A000000K8D3EIAV"),
        ("0033000000Zv4Gl", "0033000000Zv4GlAAJ"),
        ("00Q5000000AbCdE", "00Q5000000AbCdEEAV"),
        ("000000000000000", "000000000000000AAA"),
        ("ZZZZZZZZZZZZZZZ", "ZZZZZZZZZZZZZZZ555"),
    ],
)
def test_a_15_character_id_gets_salesforces_checksum_suffix(short: str, long: str) -> None:
    assert to_18(short) == long
    assert to_18(long) == long


def test_something_else_is_not_an_id() -> None:
    with pytest.raises(ValueError, match="not a Salesforce id"):
        to_18("003-nope")


@pytest.fixture
def people(engine: Engine) -> Engine:
    seed(engine, Entity.ACCOUNT, [{"id": "001A000000K8D3EIAV", "name": "Acme Corp"}])
    seed(
        engine,
        Entity.CONTACT,
        [
            {
                "id": "0033000000Zv4GlAAJ",
                "account_id": "001A000000K8D3EIAV",
                "first_name": "Jane",
                "last_name": "Doe",
                "email": "Jane.Doe@Example.com ",
            },
            {
                "id": "0033000000Zv4GmAAJ",
                "account_id": "001A000000K8D3EIAV",
                "first_name": "John",
                "last_name": "Doe",
                "email": "john@example.com",
            },
        ],
    )
    return engine


def test_a_15_character_contact_id_finds_the_stored_18_character_one(people: Engine) -> None:
    [match] = find(people, "0033000000Zv4Gl")
    assert (match.entity_type, match.id) == ("contact", "0033000000Zv4GlAAJ")
    assert match.label() == "Jane Doe (Acme Corp)"


def test_an_email_ignores_case_and_spaces(people: Engine) -> None:
    [match] = find(people, "jane.doe@example.com")
    assert match.id == "0033000000Zv4GlAAJ"


def test_a_whole_name_finds_one_and_a_partial_name_lists_every_match(people: Engine) -> None:
    [jane] = find(people, "jane doe")
    assert jane.id == "0033000000Zv4GlAAJ"
    both = find(people, "Doe")
    assert {m.id for m in both} == {"0033000000Zv4GlAAJ", "0033000000Zv4GmAAJ"}
    [account] = find(people, "acme corp")
    assert (account.entity_type, account.label()) == ("account", "Acme Corp")
    assert find(people, "nobody at all") == []
