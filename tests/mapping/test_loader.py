"""Loading and offline validation: the shipped defaults load; each kind of mistake is reported
with its exact message and position, all at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from canonical.errors import MappingError
from canonical.model import RESULT_FIELDS, Entity
from connectors.base import FieldFilter
from sync_service.mapping import load_mappings

DEFAULT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

Write = Callable[..., Path]

GOOD = """
entities:
  contacts:
    object: Contact
    fields:
      email: Email
"""


def _problems(directory: Path) -> list[str]:
    with pytest.raises(MappingError) as info:
        load_mappings(directory)
    return [p.removeprefix(str(directory) + "/") for p in info.value.problems]


def test_shipped_defaults_load() -> None:
    m = load_mappings(DEFAULT_MAPPINGS)
    assert m.salesforce is not None
    assert m.gainsight is not None
    assert set(m.salesforce.entities) == {
        Entity.ACCOUNT,
        Entity.CONTACT,
        Entity.TICKET,
        Entity.OPPORTUNITY,
        Entity.ASK,
    }
    assert {w.entity for w in m.salesforce.writeback} == {"contact", "account", "opportunity"}
    assert m.salesforce.writeback_for("opportunity") is not None
    assert m.salesforce.writeback_for("opportunity").fields == {  # type: ignore[union-attr]
        "suggested_references": "Suggested_References__c"
    }
    contact_only = {"recent_asks", "last_ask", "available_for"}
    for target in m.salesforce.writeback:
        if target.entity == "opportunity":
            continue
        wanted = set(RESULT_FIELDS) - (contact_only if target.entity == "account" else set())
        assert set(target.fields) == wanted
        assert target.owned is True
        assert target.override_field == "Advocate_Override__c"
    assert m.gainsight.writeback == []  # off by default
    assert len(m.digest) == 64


def test_digest_changes_with_the_files(write_mapping: Write) -> None:
    d = write_mapping(GOOD)
    first = load_mappings(d).digest
    assert load_mappings(d).digest == first
    write_mapping(GOOD.replace("Email", "Email__c"))
    assert load_mappings(d).digest != first


def test_minimal_file_uses_system_defaults(write_mapping: Write) -> None:
    m = load_mappings(write_mapping(GOOD))
    assert m.gainsight is None
    assert m.salesforce is not None
    spec = m.salesforce.entities[Entity.CONTACT].stream_spec()
    assert (spec.primary_key, spec.replication_key) == ("Id", "SystemModstamp")
    assert m.salesforce.writeback == []

    g = load_mappings(write_mapping(GOOD, "gainsight.yaml")).gainsight
    assert g is not None
    gspec = g.entities[Entity.CONTACT].stream_spec()
    assert (gspec.primary_key, gspec.replication_key) == ("Gsid", "ModifiedDate")


def test_replication_key_null_reads_in_full(write_mapping: Write) -> None:
    d = write_mapping(GOOD.replace("object: Contact", "object: Contact\n    replication_key: null"))
    source = load_mappings(d).salesforce
    assert source is not None
    assert source.entities[Entity.CONTACT].stream_spec().replication_key is None


def test_filters_are_structured(write_mapping: Write) -> None:
    text = GOOD + (
        "    filter:\n"
        "      - {field: Status__c, operator: IN, values: [Active, Pending]}\n"
        "      - {field: Name, operator: LIKE, values: ['Acme%']}\n"
    )
    source = load_mappings(write_mapping(text)).salesforce
    assert source is not None
    assert source.entities[Entity.CONTACT].stream_spec().filters == (
        FieldFilter("Status__c", "IN", ("Active", "Pending")),
        FieldFilter("Name", "LIKE", ("Acme%",)),
    )


def test_extra_features_are_typed(write_mapping: Write) -> None:
    text = GOOD + "    extra:\n      seniority: {from: Seniority__c, type: integer}\n"
    assert load_mappings(write_mapping(text)).extra_features() == {
        "seniority": (Entity.CONTACT, "integer")
    }


# One case per kind of mistake: (file text, expected problems as "line:col: message").
ERRORS: dict[str, tuple[str, list[str]]] = {
    "yaml syntax": (
        """
        entities:
          contacts:
            object: Contact
           fields: {email: Email}
        """,
        [
            "4:4: YAML syntax error: expected <block end>, but found '<block mapping start>'; "
            "check the indentation (spaces, not tabs) and quote values that contain ': ' or ' #'"
        ],
    ),
    "duplicate key": (
        """
        entities:
          contacts:
            object: Contact
            object: Lead
            fields: {email: Email}
        """,
        [
            '4:5: YAML syntax error: found duplicate key "object" with value "Lead" '
            '(original value: "Contact"); remove one of the two'
        ],
    ),
    "unknown top-level key": (
        """
        entites: {}
        entities:
          contacts: {object: Contact, fields: {email: Email}}
        """,
        [
            "1:1: unknown key 'entites'; did you mean 'entities'? "
            "(allowed here: version, entities, writeback)"
        ],
    ),
    "unknown canonical entity": (
        """
        entities:
          contact:
            object: Contact
            fields: {email: Email}
        """,
        [
            "2:3: unknown canonical entity 'contact'; did you mean 'contacts'? (one of "
            "accounts, contacts, nps_responses, tickets, opportunities, advocacy_asks)"
        ],
    ),
    "unknown canonical field": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              emial: Email
        """,
        [
            "5:7: contacts has no canonical field 'emial'; did you mean 'email'? "
            "(map other CRM fields under 'extra:')"
        ],
    ),
    "unsafe identifier": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              email: {from: "Email' OR Name != '"}
        """,
        [
            "5:15: CRM field \"Email' OR Name != '\" is not a valid API name: use letters, "
            "digits and underscores, starting with a letter (no dots, spaces or quotes)"
        ],
    ),
    "type mismatch": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              opted_in: {from: Opt_In__c, type: string}
        """,
        ["5:35: contacts.opted_in is boolean, not string; remove 'type' or set it to boolean"],
    ),
    "unknown type": (
        """
        entities:
          contacts:
            object: Contact
            fields: {email: Email}
            extra:
              tenure: {from: Tenure__c, type: int}
        """,
        [
            "6:33: 'type' cannot be 'int'; use one of 'string', 'integer', 'number', "
            "'boolean', 'date' or 'datetime'"
        ],
    ),
    "extra without type": (
        """
        entities:
          contacts:
            object: Contact
            fields: {email: Email}
            extra:
              tenure: {from: Tenure__c}
        """,
        [
            "6:7: 'type' is missing; extra fields need a type: one of string, integer, "
            "number, boolean, date, datetime"
        ],
    ),
    "bad default": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              opted_in: {from: Opt_In__c, default: maybe}
        """,
        ["5:35: default 'maybe' is not a valid boolean for opted_in"],
    ),
    "misspelt option": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              email: {from: Email, requried: true}
        """,
        [
            "5:28: unknown key 'requried'; did you mean 'required'? "
            "(allowed here: from, type, required, default, map, strict, transform)"
        ],
    ),
    "missing object": (
        """
        entities:
          contacts:
            fields: {email: Email}
        """,
        ["2:3: 'object' is missing; name the CRM object to read or write (e.g. Contact)"],
    ),
    "filter operator": (
        """
        entities:
          contacts:
            object: Contact
            fields: {email: Email}
            filter:
              - {field: Status__c, operator: EQUALS, values: [Active]}
        """,
        [
            "6:28: 'operator' cannot be 'EQUALS'; use one of '=', '!=', '<', '<=', '>', "
            "'>=', 'IN', 'NOT IN' or 'LIKE'"
        ],
    ),
    "filter arity": (
        """
        entities:
          contacts:
            object: Contact
            fields: {email: Email}
            filter:
              - {field: Status__c, operator: "=", values: [Active, Pending]}
        """,
        ["6:43: operator '=' takes exactly one value (got 2)"],
    ),
    "unknown result": (
        """
        entities:
          contacts: {object: Contact, fields: {email: Email}}
        writeback:
          contact:
            object: Contact
            fields:
              statuss: Advocate_Status__c
        """,
        [
            "7:7: unknown result 'statuss'; did you mean 'status'? "
            "(one of status, eligible, score, reason, next_available, recent_asks, last_ask, "
            "available_for)"
        ],
    ),
    "duplicate writeback field": (
        """
        entities:
          contacts: {object: Contact, fields: {email: Email}}
        writeback:
          contact:
            object: Contact
            fields:
              status: Advocate_Status__c
              reason: advocate_status__c
        """,
        [
            "8:7: Contact.advocate_status__c already receives 'status'; "
            "each CRM field can receive one result"
        ],
    ),
    "writeback to the override field": (
        """
        entities:
          contacts: {object: Contact, fields: {email: Email}}
        writeback:
          contact:
            object: Contact
            fields:
              status: Advocate_Override__c
        """,
        [
            "7:7: Contact.Advocate_Override__c is the override field; results cannot be "
            "written to it"
        ],
    ),
    "id among fields": (
        """
        entities:
          contacts:
            object: Contact
            fields: {id: Id, email: Email}
        """,
        ["4:14: 'id' comes from primary_key; remove it from fields"],
    ),
    "extra shadows canonical": (
        """
        entities:
          contacts:
            object: Contact
            fields: {email: Email}
            extra:
              title: {from: Title, type: string}
        """,
        [
            "6:7: extra field 'title' has the name of a canonical field of contacts; "
            "map it under 'fields:' or choose another name"
        ],
    ),
    "map value of the wrong type": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              opted_in: {from: Consent__c, map: {Given: yes please}}
        """,
        ["5:42: value map entry 'Given': 'yes please' is not a valid boolean for opted_in"],
    ),
    "strict without map": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              email: {from: Email, strict: true}
        """,
        ["5:28: 'strict' needs a 'map' of allowed values for email"],
    ),
    "entry of the wrong shape": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              email: [Email, Email__c]
        """,
        [
            "5:7: give the CRM field name, or a mapping like {from: Field__c, default: ...} "
            "(got ['Email', 'Email__c'])"
        ],
    ),
    "wrong scalar type": (
        """
        entities:
          contacts:
            object: Contact
            fields:
              email: {from: Email, required: maybe}
        """,
        ["5:28: 'required' must be true or false (got 'maybe')"],
    ),
    "not a mapping": (
        """
        - contacts
        """,
        ["1:1: the file must be a mapping with 'entities:' (and 'writeback:')"],
    ),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_each_mistake_has_an_exact_message_and_position(write_mapping: Write, kind: str) -> None:
    text, expected = ERRORS[kind]
    problems = _problems(write_mapping(text))
    assert problems == [f"salesforce.yaml:{line}" for line in expected]


def test_every_problem_is_reported_at_once(write_mapping: Write) -> None:
    text = """
    entities:
      contacts:
        object: Contact
        fields:
          emial: Email
          opted_in: {from: Opt_In__c, default: maybe}
      tickets:
        object: "Case;"
        fields: {priority: Priority}
    writeback:
      contact:
        object: Contact
        fields: {statuss: Advocate_Status__c}
    """
    problems = _problems(write_mapping(text))
    assert [p.split(": ", 1)[0] for p in problems] == [
        "salesforce.yaml:5:7",
        "salesforce.yaml:6:35",
        "salesforce.yaml:8:5",
        "salesforce.yaml:13:14",
    ]


def test_problems_of_both_files_are_reported(write_mapping: Write) -> None:
    write_mapping(GOOD.replace("email", "emial"))
    d = write_mapping(GOOD.replace("object", "objet"), "gainsight.yaml")
    problems = _problems(d)
    assert len(problems) == 3
    assert problems[0].startswith("salesforce.yaml:5:7: contacts has no canonical field")
    assert problems[1].startswith("gainsight.yaml:2:3: 'object' is missing")
    assert problems[2].startswith("gainsight.yaml:3:5: unknown key 'objet'")


def test_misnamed_file_is_reported(write_mapping: Write) -> None:
    d = write_mapping(GOOD, "salesfroce.yaml")
    assert _problems(d) == [
        "salesfroce.yaml: unknown mapping file; name it one of salesforce.yaml, "
        f"gainsight.yaml or move it out of {d}; did you mean 'salesforce.yaml'?"
    ]


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="mappings directory not found"):
        load_mappings(tmp_path / "nope")
    with pytest.raises(MappingError, match="no mapping files"):
        load_mappings(tmp_path)


def test_extra_field_meaning_must_agree_across_files(write_mapping: Write) -> None:
    write_mapping(GOOD + "    extra:\n      tier: {from: Tier__c, type: string}\n")
    d = write_mapping(
        GOOD + "    extra:\n      tier: {from: Tier__c, type: integer}\n", "gainsight.yaml"
    )
    problems = _problems(d)
    assert problems == [
        "gainsight.yaml:7:7: extra field 'tier' is already declared as contacts string at "
        f"{d}/salesforce.yaml:7:7; rename one of them"
    ]


def test_mapping_error_is_a_config_error_with_exit_code_2(write_mapping: Write) -> None:
    d = write_mapping("entities: {}\nbogus: 1\n")
    with pytest.raises(MappingError) as info:
        load_mappings(d)
    assert info.value.exit_code == 2
    assert str(info.value) == info.value.problems[0]


def test_the_annotated_example_in_mappings_md_is_valid(write_mapping: Write) -> None:
    doc = (DEFAULT_MAPPINGS.parent / "MAPPINGS.md").read_text()
    start = doc.index("```yaml\nversion: 1")
    example = doc[start + len("```yaml\n") : doc.index("```\n", start + 8)]
    m = load_mappings(write_mapping(example))
    assert m.salesforce is not None
    assert set(m.salesforce.entities) == {Entity.ACCOUNT, Entity.CONTACT, Entity.ASK}
    assert m.extra_features() == {
        "annual_revenue": (Entity.ACCOUNT, "number"),
        "tier": (Entity.ACCOUNT, "string"),
        # the guard's fields on the asks (Ask API, asks job)
        "guard_ask_id": (Entity.ASK, "string"),
        "guard_status": (Entity.ASK, "string"),
        "guard_reason": (Entity.ASK, "string"),
        "guard_override": (Entity.ASK, "boolean"),
    }
    contacts = m.salesforce.entities[Entity.CONTACT]
    row = contacts.to_row({"Id": "003A", "Advocacy_Consent__c": "Withdrawn"})
    assert row["opted_out"] is True
    assert row["opted_in"] is False
