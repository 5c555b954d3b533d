"""The sandbox's object schemas: Salesforce sObjects and Gainsight objects, field by field.

Each object is one SQLite table whose columns are the field API names, so SOQL and Gainsight
filters compile to SQL. Storage conventions (shared with ``seed`` and the servers):

- booleans are 0/1 integers; numbers are REAL/INTEGER;
- Salesforce datetimes are text ``YYYY-MM-DDTHH:MM:SS.000+0000`` (UTC, so text order is time
  order), dates ``YYYY-MM-DD``; Gainsight datetimes are ``YYYY-MM-DDTHH:MM:SS.000Z``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

#: Field types whose values are stored as 0/1.
BOOLEAN_TYPES = frozenset({"boolean"})
#: Field types stored as numbers.
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "number"})
INT_TYPES = frozenset({"int"})
#: Types whose SOQL literals are quoted strings.
STRING_TYPES = frozenset(
    {"id", "string", "picklist", "reference", "email", "textarea", "phone", "url", "multipicklist"}
)

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


@dataclass
class Field:
    """One field of an object, with what describe says of it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    updateable: bool = True
    createable: bool = True
    calculated: bool = False
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0
    external_id: bool = False

    @property
    def sql_type(self) -> str:
        """The SQLite column type."""
        if self.type in BOOLEAN_TYPES or self.type in INT_TYPES:
            return "INTEGER"
        if self.type in NUMBER_TYPES:
            return "REAL"
        return "TEXT"

    def describe(self) -> dict[str, Any]:
        """The field as Salesforce's describe lists it."""
        return {
            "name": self.name,
            "label": self.label or self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 9 if self.type == "int" else 0,
            "custom": self.name.endswith("__c"),
            "updateable": self.updateable,
            "createable": self.createable,
            "calculated": self.calculated,
            "nillable": self.nillable,
            "filterable": self.type != "textarea",
            "sortable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "datetime"),
            "unique": False,
            "externalId": self.external_id,
            "idLookup": self.type == "id" or self.external_id,
            "defaultedOnCreate": self.type == "boolean" or self.name in _SYSTEM_FIELDS,
            "defaultValue": False if self.type == "boolean" else None,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": False,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "autoNumber": False,
            "caseSensitive": False,
            "htmlFormatted": False,
            "inlineHelpText": None,
        }


@dataclass
class ObjectDef:
    """One object: name, Salesforce key prefix (or Gainsight id letter) and fields in order."""

    name: str
    label: str
    key_prefix: str
    fields: dict[str, Field] = field(default_factory=dict)
    custom: bool = False

    def field(self, name: str) -> Field | None:
        """The field named ``name`` (case-insensitive, as Salesforce resolves names)."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lower = name.lower()
        for candidate in self.fields.values():
            if candidate.name.lower() == lower:
                return candidate
        return None

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationship name is ``name`` (case-insensitive)."""
        lower = name.lower()
        for candidate in self.fields.values():
            if candidate.relationship_name and candidate.relationship_name.lower() == lower:
                return candidate
        return None


_SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")

ADVOCATE_STATUSES = ("Eligible", "Fatigued", "Suspended", "Not Eligible", "Opted Out")
INDUSTRIES = (
    "Technology",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Energy",
    "Government",
    "Telecommunications",
)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
ASK_TYPES = (
    "Reference Call",
    "Case Study",
    "Webinar",
    "Peer Review",
    "Speaking",
    "Analyst Call",
    "Press",
    "Advisory Board",
    "Beta",
)
GUARD_STATUSES = ("Clear", "Conflict", "Override")
#: Consent per activity (Contact.Reference_Consent_Types__c, a multi-select).
CONSENT_TYPES = (
    "Reference Call",
    "Case Study",
    "Logo Use",
    "Speaking",
    "Peer Review",
    "Analyst Reference",
    "Beta/Advisory",
)
ASK_STATUSES = ("Requested", "Accepted", "Declined", "Completed")
TEAMS = (
    "Sales",
    "Customer Success",
    "Marketing",
    "Events",
    "PR",
    "Product",
    "Analyst Relations",
)
# the standard Case.Priority picklist of a new org
CASE_PRIORITIES = ("High", "Medium", "Low")
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
OPP_TYPES = ("New Business", "Renewal", "Upsell")
OPP_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
)
RENEWAL_RISKS = ("Low", "Medium", "High")
ACCOUNT_TYPES = ("Customer", "Prospect", "Partner", "Former Customer")
OPT_IN_SOURCES = ("Web Form", "CSM", "Event", "Survey")


def _system(prefix_obj: str, mergeable: bool = False) -> list[Field]:
    ro: dict[str, Any] = {"updateable": False, "createable": False}
    fields = [
        Field("Id", "id", "Record ID", length=18, nillable=False, **ro),
        Field("IsDeleted", "boolean", "Deleted", nillable=False, **ro),
    ]
    if mergeable:
        fields.append(
            Field(
                "MasterRecordId",
                "reference",
                "Master Record ID",
                length=18,
                reference_to=(prefix_obj,),
                relationship_name="MasterRecord",
                **ro,
            )
        )
    fields += [
        Field("CreatedDate", "datetime", "Created Date", nillable=False, **ro),
        Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, **ro),
        Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, **ro),
    ]
    return fields


def _advocate_fields(with_override: bool = True) -> list[Field]:
    fields = [
        Field(
            "Advocate_Status__c",
            "picklist",
            "Advocate Status",
            length=255,
            picklist=ADVOCATE_STATUSES,
            restricted=True,
        ),
        Field("Advocate_Eligible__c", "boolean", "Advocate Eligible", nillable=False),
        Field("Advocate_Score__c", "double", "Advocate Score", precision=5, scale=2),
        Field("Advocate_Reason__c", "string", "Advocate Reason", length=255),
        Field("Advocate_Next_Available__c", "date", "Advocate Next Available"),
    ]
    if with_override:
        fields.append(Field("Advocate_Override__c", "boolean", "Advocate Override", nillable=False))
    return fields


def _guard_fields() -> list[Field]:
    """The guard's fields on Reference_Request__c (salesforce/force-app ships the same)."""
    return [
        Field(
            "Guard_Status__c",
            "picklist",
            "Guard Status",
            length=255,
            picklist=GUARD_STATUSES,
            restricted=True,
        ),
        Field("Guard_Reason__c", "string", "Guard Reason", length=255),
        Field("Guard_Ask_Id__c", "string", "Guard Ask ID", length=64, external_id=True),
        Field("Guard_Override__c", "boolean", "Guard Override", nillable=False),
    ]


def _obj(name: str, label: str, prefix: str, fields: list[Field]) -> ObjectDef:
    return ObjectDef(name, label, prefix, {f.name: f for f in fields}, custom=name.endswith("__c"))


def salesforce_objects() -> dict[str, ObjectDef]:
    """A fresh copy of the Salesforce schema (each sandbox may add or rename fields)."""
    ro: dict[str, Any] = {"updateable": False, "createable": False}
    account = _obj(
        "Account",
        "Account",
        "001",
        [
            *_system("Account", mergeable=True),
            Field("Name", "string", "Account Name", length=255, nillable=False),
            Field("Type", "picklist", "Account Type", length=255, picklist=ACCOUNT_TYPES),
            Field("Industry", "picklist", "Industry", length=255, picklist=INDUSTRIES),
            Field("BillingCountry", "string", "Billing Country", length=80),
            Field("Region__c", "picklist", "Region", length=255, picklist=REGIONS),
            Field("Segment__c", "picklist", "Segment", length=255, picklist=SEGMENTS),
            Field("Customer_Since__c", "date", "Customer Since"),
            Field("AnnualRevenue", "currency", "Annual Revenue", precision=18),
            Field("NumberOfEmployees", "int", "Employees", precision=8),
            *_advocate_fields(),
        ],
    )
    contact = _obj(
        "Contact",
        "Contact",
        "003",
        [
            *_system("Contact", mergeable=True),
            Field(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            Field("FirstName", "string", "First Name", length=40),
            Field("LastName", "string", "Last Name", length=80, nillable=False),
            Field("Name", "string", "Full Name", length=121, nillable=False, **ro),
            Field("Email", "email", "Email", length=80),
            Field("Title", "string", "Title", length=128),
            Field("Reference_Opt_In__c", "boolean", "Reference Opt-In", nillable=False),
            Field("Reference_Opt_In_Date__c", "date", "Reference Opt-In Date"),
            Field(
                "Reference_Opt_In_Source__c",
                "picklist",
                "Reference Opt-In Source",
                length=255,
                picklist=OPT_IN_SOURCES,
            ),
            Field("Reference_Opt_Out__c", "boolean", "Reference Opt-Out", nillable=False),
            Field(
                "Reference_Consent_Types__c",
                "multipicklist",
                "Reference Consent Types",
                length=4099,
                picklist=CONSENT_TYPES,
                restricted=True,
            ),
            *_advocate_fields(),
            Field(
                "Advocate_Asks_90d__c", "double", "Advocate Asks (90 days)", precision=6, scale=0
            ),
            Field("Advocate_Last_Ask__c", "date", "Advocate Last Ask"),
            Field(
                "Advocate_Available_For__c",
                "multipicklist",
                "Advocate Available For",
                length=4099,
                picklist=ASK_TYPES,
                restricted=True,
            ),
        ],
    )
    opportunity = _obj(
        "Opportunity",
        "Opportunity",
        "006",
        [
            *_system("Opportunity"),
            Field(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            Field("Name", "string", "Name", length=120, nillable=False),
            Field("Type", "picklist", "Opportunity Type", length=255, picklist=OPP_TYPES),
            Field("StageName", "picklist", "Stage", length=255, picklist=OPP_STAGES),
            Field("IsClosed", "boolean", "Closed", nillable=False, **ro),
            Field("IsWon", "boolean", "Won", nillable=False, **ro),
            Field("CloseDate", "date", "Close Date", nillable=False),
            Field("Amount", "currency", "Amount", precision=18, scale=2),
            Field(
                "Renewal_Risk__c",
                "picklist",
                "Renewal Risk",
                length=255,
                picklist=RENEWAL_RISKS,
                restricted=True,
            ),
            Field("Suggested_References__c", "textarea", "Suggested References", length=32768),
        ],
    )
    case = _obj(
        "Case",
        "Case",
        "500",
        [
            *_system("Case"),
            Field("CaseNumber", "string", "Case Number", length=30, nillable=False, **ro),
            Field(
                "AccountId",
                "reference",
                "Account ID",
                length=18,
                reference_to=("Account",),
                relationship_name="Account",
            ),
            Field(
                "ContactId",
                "reference",
                "Contact ID",
                length=18,
                reference_to=("Contact",),
                relationship_name="Contact",
            ),
            Field("Subject", "string", "Subject", length=255),
            Field("Priority", "picklist", "Priority", length=255, picklist=CASE_PRIORITIES),
            Field("Status", "picklist", "Status", length=255, picklist=CASE_STATUSES),
            Field("IsClosed", "boolean", "Closed", nillable=False, **ro),
            Field("IsEscalated", "boolean", "Escalated", nillable=False),
            Field("ClosedDate", "datetime", "Closed Date", **ro),
        ],
    )
    ask = _obj(
        "Reference_Request__c",
        "Reference Request",
        "a0X",
        [
            *_system("Reference_Request__c"),
            Field("Name", "string", "Reference Request Name", length=80, nillable=False, **ro),
            Field(
                "Contact__c",
                "reference",
                "Contact",
                length=18,
                reference_to=("Contact",),
                relationship_name="Contact__r",
            ),
            Field(
                "Account__c",
                "reference",
                "Account",
                length=18,
                reference_to=("Account",),
                relationship_name="Account__r",
            ),
            Field("Type__c", "picklist", "Type", length=255, picklist=ASK_TYPES),
            Field("Status__c", "picklist", "Status", length=255, picklist=ASK_STATUSES),
            Field("Requested_Date__c", "date", "Requested Date"),
            Field("Team__c", "picklist", "Team", length=255, picklist=TEAMS),
            Field(
                "Opportunity__c",
                "reference",
                "Opportunity",
                length=18,
                reference_to=("Opportunity",),
                relationship_name="Opportunity__r",
            ),
            *_guard_fields(),
        ],
    )
    objects = [account, contact, opportunity, case, ask]
    return {o.name: copy.deepcopy(o) for o in objects}


def gainsight_objects() -> dict[str, ObjectDef]:
    """A fresh copy of the Gainsight schema: Company, Person, survey answers, one custom object."""
    ro: dict[str, Any] = {"updateable": False, "createable": False}

    def system() -> list[Field]:
        return [
            Field("Gsid", "string", "GSID", length=36, nillable=False, **ro),
            Field("CreatedDate", "datetime", "Created Date", **ro),
            Field("ModifiedDate", "datetime", "Modified Date", **ro),
        ]

    def advocate() -> list[Field]:
        return [
            Field(
                "Advocate_Status__gc",
                "picklist",
                "Advocate Status",
                length=255,
                picklist=ADVOCATE_STATUSES,
                restricted=True,
            ),
            Field("Advocate_Eligible__gc", "boolean", "Advocate Eligible"),
            Field("Advocate_Score__gc", "number", "Advocate Score"),
            Field("Advocate_Reason__gc", "string", "Advocate Reason", length=255),
            Field("Advocate_Next_Available__gc", "date", "Advocate Next Available"),
        ]

    company = _obj(
        "Company",
        "Company",
        "C",
        [
            *system(),
            Field("Name", "string", "Name", length=255, nillable=False),
            Field("SfdcAccountId", "string", "SFDC Account Id", length=18),
            Field("Industry", "picklist", "Industry", length=255, picklist=INDUSTRIES),
            Field("ARR", "number", "ARR"),
            Field("Stage", "picklist", "Stage", picklist=("New Customer", "Adopting", "Mature")),
            Field("Status", "picklist", "Status", picklist=("Active", "Churned", "Inactive")),
            Field("CurrentScore", "number", "Current Score", **ro),
            Field("NPS", "number", "NPS", **ro),
            Field("RenewalDate", "date", "Renewal Date"),
            Field("OriginalContractDate", "date", "Original Contract Date"),
            Field("PaymentOverdue__gc", "boolean", "Payment Overdue"),
            Field("ChurnRisk__gc", "boolean", "Churn Risk"),
            *advocate(),
        ],
    )
    person = _obj(
        "Person",
        "Person",
        "P",
        [
            *system(),
            Field("Name", "string", "Name", length=255, **ro),
            Field("FirstName", "string", "First Name", length=255),
            Field("LastName", "string", "Last Name", length=255),
            Field("Email", "email", "Email", length=255),
            Field("SfdcContactId", "string", "SFDC Contact Id", length=18),
            Field("CompanyId", "string", "Company ID", length=36, reference_to=("Company",)),
            Field("Role", "string", "Role", length=255),
            *advocate(),
        ],
    )
    answers = _obj(
        "SurveyUserAnswer",
        "Survey User Answer",
        "S",
        [
            *system(),
            Field("SurveyId", "string", "Survey ID", length=36),
            Field("PersonId", "string", "Person ID", length=36, reference_to=("Person",)),
            Field("CompanyId", "string", "Company ID", length=36, reference_to=("Company",)),
            Field("ParticipantEmail", "email", "Participant Email", length=255),
            Field("SfdcContactId", "string", "SFDC Contact Id", length=18),
            Field("NPSScore", "int", "NPS Score"),
            Field("ResponseDate", "datetime", "Response Date"),
            Field("Comments", "string", "Comments", length=1000),
        ],
    )
    program = _obj(
        "Advocacy_Program__gc",
        "Advocacy Program",
        "A",
        [
            *system(),
            Field("PersonId__gc", "string", "Person", length=36, reference_to=("Person",)),
            Field("CompanyId__gc", "string", "Company", length=36, reference_to=("Company",)),
            Field(
                "Program__gc",
                "picklist",
                "Program",
                picklist=("Customer Advisory Board", "Champions", "Beta Testers"),
            ),
            Field(
                "Membership_Status__gc",
                "picklist",
                "Membership Status",
                picklist=("Active", "Paused", "Left"),
            ),
            Field("Joined_Date__gc", "date", "Joined Date"),
        ],
    )
    objects = [company, person, answers, program]
    return {o.name: copy.deepcopy(o) for o in objects}
