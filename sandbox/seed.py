"""Deterministic, skewed seed data for both systems, generated fast enough for 1M contacts.

Everything comes from one ``random.Random(seed)`` and a reference time ``now``: the same seed and
``now`` give the same org. Every timestamp is at or before ``now``. Picks use ``int(r() * n)``
on precomputed weighted lists rather than ``random.choice``/``choices``: at a million rows the
difference is the difference between seconds and a minute.

Shapes worth knowing (tests and the demo lean on them):

- accounts spread over industries, regions (NA > EMEA > APAC > LATAM) and segments; enterprise
  accounts have more contacts (about 5 an account overall), more cases and higher opt-in;
- a few percent of contacts are "visible" advocates that take most of the asks in
  ``Reference_Request__c``; some contacts opted in, a few later opted out (withdrawal);
- open escalated or long-open High-priority cases, renewals at High risk, overdue payments and
  churn risk on a few percent of accounts (suspension signals);
- Gainsight companies carry ``SfdcAccountId`` except a few; people's emails vary in case and
  whitespace, some are duplicated, most carry ``SfdcContactId``; NPS answers over two years with a
  promoter/passive/detractor mix that follows the company's health.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from sandbox import schema as s
from sandbox.ids import gsid, sf_id
from sandbox.store import GAINSIGHT, SALESFORCE, SandboxStore, gainsight_path, quote

_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Maria",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Ahmed",
    "Fatima",
    "Olivia",
    "Liam",
    "Noah",
    "Emma",
    "Lucas",
    "Sofia",
    "Mateo",
    "Isabella",
    "Arjun",
    "Priya",
    "Lars",
    "Ingrid",
    "Pierre",
    "Amelie",
    "Giulia",
    "Marco",
    "Anna",
    "Jan",
    "Eva",
    "Tomas",
    "Aisha",
    "Omar",
    "Chloe",
    "Ethan",
]
_LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Muller",
    "Schmidt",
    "Tanaka",
    "Suzuki",
    "Chen",
    "Wang",
    "Kumar",
    "Singh",
    "Rossi",
    "Dubois",
    "Jansen",
    "Nilsson",
]
_WORDS_A = [
    "Acme",
    "Blue",
    "Northern",
    "Summit",
    "Vertex",
    "Silver",
    "Bright",
    "Global",
    "Pioneer",
    "Atlas",
    "Nova",
    "Evergreen",
    "Quantum",
    "Crescent",
    "Harbor",
    "Granite",
    "Maple",
    "Orion",
    "Polar",
    "Red",
    "Sterling",
    "Swift",
    "True",
    "Union",
    "Apex",
    "Cedar",
    "Delta",
    "Echo",
    "Falcon",
    "Horizon",
]
_WORDS_B = [
    "Analytics",
    "Systems",
    "Logistics",
    "Health",
    "Capital",
    "Foods",
    "Energy",
    "Media",
    "Labs",
    "Works",
    "Dynamics",
    "Networks",
    "Partners",
    "Robotics",
    "Software",
    "Pharma",
    "Retail",
    "Motors",
    "Bank",
    "Insurance",
    "Telecom",
    "Learning",
    "Studios",
    "Foundry",
    "Cloud",
    "Materials",
    "Brands",
    "Holdings",
    "Ventures",
    "Solutions",
]
_WORDS_C = ("Inc", "Ltd", "GmbH", "Group", "Corp", "SA", "LLC", "Co")
_TITLES = (
    "VP Engineering",
    "Director of IT",
    "CTO",
    "CIO",
    "Head of Operations",
    "Product Manager",
    "Senior Engineer",
    "Data Analyst",
    "VP Customer Success",
    "Procurement Manager",
    "Marketing Director",
    "Chief Data Officer",
)
_COUNTRIES = {
    "NA": ("United States", "United States", "United States", "Canada"),
    "EMEA": ("United Kingdom", "Germany", "France", "Netherlands", "Sweden", "Spain", "UAE"),
    "APAC": ("Japan", "Australia", "Singapore", "India", "South Korea"),
    "LATAM": ("Brazil", "Mexico", "Argentina", "Chile", "Colombia"),
}
_SUBJECTS = (
    "Login failure",
    "Data export slow",
    "Integration error",
    "Billing question",
    "Feature request",
    "Outage report",
    "Performance degradation",
    "Permission issue",
)

DEFAULT_CONTACTS_PER_ACCOUNT = 5
_BY_GS_STAMP = itemgetter(2)
#: Bump whenever the generated data or the schema changes: it keys the seed cache.
SEED_VERSION = 6
PARALLEL_MIN_ACCOUNTS = 20_000


def _weighted(pairs: Sequence[tuple[str, int]]) -> tuple[str, ...]:
    """A table where each value appears ``weight`` times; pick with ``t[int(r() * len(t))]``."""
    out: list[str] = []
    for value, weight in pairs:
        out.extend([value] * weight)
    return tuple(out)


_INDUSTRY = _weighted(
    [
        ("Technology", 28),
        ("Financial Services", 15),
        ("Healthcare", 12),
        ("Manufacturing", 11),
        ("Retail", 9),
        ("Education", 7),
        ("Media", 6),
        ("Energy", 5),
        ("Government", 4),
        ("Telecommunications", 3),
    ]
)
_REGION = _weighted([("NA", 45), ("EMEA", 30), ("APAC", 17), ("LATAM", 8)])
_SEGMENT = _weighted([("Enterprise", 15), ("Mid-Market", 35), ("SMB", 50)])
_ACCOUNT_TYPE = _weighted(
    [("Customer", 86), ("Partner", 4), ("Prospect", 5), ("Former Customer", 5)]
)
_PRIORITY = _weighted([("High", 10), ("Medium", 45), ("Low", 45)])
_ASK_TYPE = _weighted(
    [
        ("Reference Call", 38),
        ("Case Study", 10),
        ("Webinar", 9),
        ("Peer Review", 16),
        ("Speaking", 6),
        ("Analyst Call", 6),
        ("Press", 4),
        ("Advisory Board", 6),
        ("Beta", 5),
    ]
)
_TEAM = _weighted(
    [
        ("Sales", 40),
        ("Customer Success", 20),
        ("Marketing", 18),
        ("Events", 8),
        ("PR", 5),
        ("Product", 6),
        ("Analyst Relations", 3),
    ]
)
_RISK = _weighted([("Low", 70), ("Medium", 20), ("High", 10)])
_CONTACTS_BY_SEGMENT = {"Enterprise": (8, 8), "Mid-Market": (4, 4), "SMB": (1, 4)}


class _Sink:
    """The rows of one object, kept in chunks and stored in modstamp order at the end.

    Chunks go to a staging table, so memory is bounded by the chunk, not by the org.
    Modstamp order is roughly how an org's storage is laid out, and it makes incremental
    queries (``ORDER BY SystemModstamp``) read the table sequentially instead of hopping
    about it.
    """

    CHUNK = 50_000

    def __init__(
        self, store: SandboxStore, system: str, obj: str, columns: Sequence[str], stamp: str
    ) -> None:
        self.store = store
        self.table = store.table(system, obj)
        self.columns = columns
        self.order = f"{quote(stamp)}, {quote('Id' if system == SALESFORCE else 'Gsid')}"
        self.staging = quote(f"_staging_{obj}")
        self.rows: list[Sequence[Any]] = []
        self.count = 0
        cols = ", ".join(quote(c) for c in columns)
        store.execute(f"CREATE TABLE {self.staging} AS SELECT {cols} FROM {self.table} WHERE 0")

    def add(self, row: Sequence[Any]) -> None:
        """Keep one row."""
        self.rows.append(row)
        if len(self.rows) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.store.insert_into(self.staging, self.columns, self.rows)
            self.count += len(self.rows)
            self.rows = []

    def finish(self) -> int:
        """Store every row in modstamp order; return how many."""
        self._flush()
        cols = ", ".join(quote(c) for c in self.columns)
        self.store.execute(
            f"INSERT INTO {self.table} ({cols}) SELECT {cols} FROM {self.staging} "
            f"ORDER BY {self.order}"
        )
        self.store.execute(f"DROP TABLE {self.staging}")
        return self.count


@dataclass
class SeedSummary:
    """How many rows of each object were made."""

    counts: dict[str, int]


class _Clock:
    """Fast timestamp strings for epoch seconds at or before ``now``."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = int(now.timestamp())
        self.today = self.now // 86400
        first = self.today - 4000
        epoch = dt.date(1970, 1, 1)
        self._first = first
        self._days = [
            (epoch + dt.timedelta(days=d)).isoformat() for d in range(first, self.today + 800)
        ]
        self._hms = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
        self._ss = [f"{x:02d}" for x in range(60)]

    def sf(self, epoch: int) -> str:
        """Salesforce datetime text."""
        day, sec = divmod(epoch, 86400)
        return (
            self._days[day - self._first]
            + "T"
            + self._hms[sec // 60]
            + self._ss[sec % 60]
            + ".000+0000"
        )

    def gs(self, epoch: int) -> str:
        """Gainsight datetime text."""
        day, sec = divmod(epoch, 86400)
        return (
            self._days[day - self._first]
            + "T"
            + self._hms[sec // 60]
            + self._ss[sec % 60]
            + ".000Z"
        )

    def date(self, days_from_today: int) -> str:
        """A date relative to today (negative: past)."""
        return self._days[self.today + days_from_today - self._first]


def seed(
    store: SandboxStore,
    *,
    accounts: int,
    seed: int,
    now: dt.datetime,
    contacts_per_account: int = DEFAULT_CONTACTS_PER_ACCOUNT,
    progress: Callable[[str], None] | None = None,
    parallel: bool | None = None,
) -> SeedSummary:
    """Fill ``store`` (and its Gainsight file, attached at the end) with a deterministic org.

    ``parallel`` seeds Gainsight in a forked process (default: for orgs of
    ``PARALLEL_MIN_ACCOUNTS`` accounts or more, where it saves a third of the time).
    """
    rng = random.Random(seed)
    r = rng.random
    clock = _Clock(now)
    now_s = clock.now
    counts: dict[str, int] = {}
    scale = contacts_per_account / DEFAULT_CONTACTS_PER_ACCOUNT

    def stamp_after(created: int) -> int:
        # Most records were touched recently; some not for a long time.
        span = now_s - created
        return created + int(span * (1.0 - r() ** 3 * 0.999)) - 1 if span > 1 else created

    # ---- Accounts --------------------------------------------------------------------------
    acc_cols = (
        "Id",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "Name",
        "Type",
        "Industry",
        "BillingCountry",
        "Region__c",
        "Segment__c",
        "Customer_Since__c",
        "AnnualRevenue",
        "NumberOfEmployees",
    )
    acc_rows = _Sink(store, SALESFORCE, "Account", acc_cols, "SystemModstamp")
    acc_ids: list[str] = []
    acc_seg: list[str] = []
    acc_type: list[str] = []
    acc_name: list[str] = []
    acc_domain: list[str] = []
    acc_since: list[int] = []
    n_a, n_b, n_c = len(_WORDS_A), len(_WORDS_B), len(_WORDS_C)
    combos = n_a * n_b
    for i in range(accounts):
        a, b = divmod(i % combos, n_b)
        round_ = i // combos
        name = f"{_WORDS_A[a]} {_WORDS_B[b]} {_WORDS_C[(a + b) % n_c]}"
        domain = f"{_WORDS_A[a]}{_WORDS_B[b]}".lower()
        if round_:
            name += f" {round_ + 1}"
            domain += str(round_ + 1)
        region = _REGION[int(r() * len(_REGION))]
        segment = _SEGMENT[int(r() * len(_SEGMENT))]
        atype = _ACCOUNT_TYPE[int(r() * len(_ACCOUNT_TYPE))]
        since_days = 20 + int(r() * r() * 3000)
        created = now_s - since_days * 86400 - int(r() * 86400 * 30)
        stamp = stamp_after(created)
        countries = _COUNTRIES[region]
        emp = {"Enterprise": 5000, "Mid-Market": 500, "SMB": 50}[segment]
        aid = sf_id("001", i + 1)
        acc_rows.add(
            (
                aid,
                0,
                clock.sf(created),
                clock.sf(stamp),
                clock.sf(stamp),
                name,
                atype,
                _INDUSTRY[int(r() * len(_INDUSTRY))],
                countries[int(r() * len(countries))],
                region,
                segment,
                clock.date(-since_days) if atype != "Prospect" else None,
                float(emp * (200 + int(r() * 400)) * 1000),
                emp + int(r() * emp * 3),
            )
        )
        acc_ids.append(aid)
        acc_seg.append(segment)
        acc_type.append(atype)
        acc_name.append(name)
        acc_domain.append(domain)
        acc_since.append(created)
    counts["Account"] = acc_rows.finish()
    if progress:
        progress(f"accounts: {accounts:,}")

    # ---- Contacts --------------------------------------------------------------------------
    con_cols = (
        "Id",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "AccountId",
        "FirstName",
        "LastName",
        "Name",
        "Email",
        "Title",
        "Reference_Opt_In__c",
        "Reference_Opt_In_Date__c",
        "Reference_Opt_In_Source__c",
        "Reference_Opt_Out__c",
        "Advocate_Override__c",
        "Advocate_Status__c",
        "Advocate_Reason__c",
    )
    con_rows = _Sink(store, SALESFORCE, "Contact", con_cols, "SystemModstamp")
    # Per contact, only what later objects need: id, account index, email, opted in.
    con_ids: list[str] = []
    con_acc: list[int] = []
    con_email: list[str] = []
    con_first: list[str] = []
    con_last: list[str] = []
    opted_in: list[int] = []
    acc_contacts: list[tuple[int, int]] = []  # [start, end) into con_ids per account
    n_first, n_last = len(_FIRST), len(_LAST)
    n = 0
    for ai in range(accounts):
        lo, width = _CONTACTS_BY_SEGMENT[acc_seg[ai]]
        k = max(1, round((lo + int(r() * width)) * scale))
        start = n
        created_acc = acc_since[ai]
        enterprise = acc_seg[ai] == "Enterprise"
        for _ in range(k):
            n += 1
            first = _FIRST[int(r() * n_first)]
            last = _LAST[int(r() * n_last)]
            cid = sf_id("003", n)
            email = f"{first}.{last}{n % 97 if r() < 0.3 else ''}@{acc_domain[ai]}.com".lower()
            created = created_acc + int(r() * (now_s - created_acc))
            stamp = stamp_after(created)
            opt = r() < (0.35 if enterprise else 0.2)
            out = r() < (0.12 if opt else 0.01)
            override = r() < 0.004
            opt_days = -int(r() * 700)
            con_rows.add(
                (
                    cid,
                    0,
                    clock.sf(created),
                    (stamp_text := clock.sf(stamp)),
                    stamp_text,
                    acc_ids[ai],
                    first,
                    last,
                    f"{first} {last}",
                    email,
                    _TITLES[int(r() * len(_TITLES))],
                    1 if opt else 0,
                    clock.date(opt_days) if opt else None,
                    s.OPT_IN_SOURCES[int(r() * 4)] if opt else None,
                    1 if out else 0,
                    1 if override else 0,
                    "Not Eligible" if override else None,
                    "Held by account team" if override else None,
                )
            )
            con_ids.append(cid)
            con_acc.append(ai)
            con_email.append(email)
            con_first.append(first)
            con_last.append(last)
            opted_in.append(1 if opt and not out else 0)
        acc_contacts.append((start, n))
    counts["Contact"] = con_rows.finish()
    if progress:
        progress(f"contacts: {n:,}")

    willing = [i for i, o in enumerate(opted_in) if o] or list(range(len(con_ids)))
    # About 4% of the willing are the visible, over-asked advocates. Teams keep asking them
    # because they are happy promoters, so Gainsight knows them as such: what protects them is
    # fatigue, not a missing survey answer.
    stars = willing[::25]
    star_set = set(stars)

    def gainsight(gs: SandboxStore) -> None:
        """Seed Gainsight from the accounts and contacts above (its own random stream)."""
        r = random.Random(f"{seed}:gainsight").random

        def stamp_after(created: int) -> int:
            span = now_s - created
            return created + int(span * (1.0 - r() ** 3 * 0.999)) - 1 if span > 1 else created

        # ---- Gainsight companies ---------------------------------------------------------------
        comp_cols = (
            "Gsid",
            "CreatedDate",
            "ModifiedDate",
            "Name",
            "SfdcAccountId",
            "Industry",
            "ARR",
            "Stage",
            "Status",
            "CurrentScore",
            "RenewalDate",
            "OriginalContractDate",
            "PaymentOverdue__gc",
            "ChurnRisk__gc",
        )
        comp_rows: list[tuple[Any, ...]] = []
        acc_company: list[str | None] = [None] * accounts
        company_score: dict[str, float] = {}
        n_comp = 0
        for ai in range(accounts):
            if acc_type[ai] == "Prospect" or r() < 0.04:
                continue
            n_comp += 1
            cg = gsid("C", n_comp)
            acc_company[ai] = cg
            score = max(1.0, min(100.0, 72 + (r() + r() + r() - 1.5) * 45))
            company_score[cg] = score
            created = acc_since[ai] + 86400
            created = min(created, now_s - 60)
            stamp = stamp_after(created)
            comp_rows.append(
                (
                    cg,
                    clock.gs(created),
                    clock.gs(stamp),
                    acc_name[ai],
                    acc_ids[ai] if r() >= 0.03 else None,
                    None,
                    float(10000 * (1 + int(r() * 300))),
                    ("New Customer", "Adopting", "Mature")[int(r() * 3)],
                    "Churned" if acc_type[ai] == "Former Customer" else "Active",
                    round(score, 1),
                    clock.date(int(r() * 365)),
                    clock.date(-(now_s - acc_since[ai]) // 86400),
                    1 if r() < 0.03 else 0,
                    1 if score < 35 and r() < 0.6 else 0,
                )
            )
        extra = max(1, accounts // 50)
        for _ in range(extra):  # companies that exist only in Gainsight
            n_comp += 1
            created = now_s - int(r() * 700 * 86400) - 60
            comp_rows.append(
                (
                    gsid("C", n_comp),
                    clock.gs(created),
                    clock.gs(stamp_after(created)),
                    f"{_WORDS_A[int(r() * n_a)]} Prospect {n_comp}",
                    None,
                    None,
                    0.0,
                    "New Customer",
                    "Active",
                    50.0,
                    None,
                    None,
                    0,
                    0,
                )
            )

        # ---- Gainsight people ------------------------------------------------------------------
        person_cols = (
            "Gsid",
            "CreatedDate",
            "ModifiedDate",
            "Name",
            "FirstName",
            "LastName",
            "Email",
            "SfdcContactId",
            "CompanyId",
            "Role",
        )
        person_rows = _Sink(gs, GAINSIGHT, "Person", person_cols, "ModifiedDate")
        # (person gsid, email as typed, sfdc contact id or None, company gsid, score)
        people: list[tuple[str, str, str | None, str, float, bool]] = []
        n_person = 0
        for ci, cid in enumerate(con_ids):
            linked_company = acc_company[con_acc[ci]]
            if linked_company is None or r() < 0.12:
                continue
            cg = linked_company
            email = con_email[ci]
            x = r()
            if x < 0.15:
                email = email.title()  # "Jane.Doe@Acme.Com"
            elif x < 0.2:
                email = f" {email.upper()} "
            elif x < 0.22:
                email = email + " "
            dup = r() < 0.01
            for copy_ in range(2 if dup else 1):
                n_person += 1
                pg = gsid("P", n_person)
                linked = cid if (copy_ == 0 and r() < 0.8) else None
                typed = email if copy_ == 0 else email.strip().upper()
                created = now_s - int(r() * 900 * 86400) - 60
                person_rows.add(
                    (
                        pg,
                        clock.gs(created),
                        clock.gs(stamp_after(created)),
                        f"{con_first[ci]} {con_last[ci]}",
                        con_first[ci],
                        con_last[ci],
                        typed,
                        linked,
                        cg,
                        "Champion" if opted_in[ci] and r() < 0.5 else "User",
                    )
                )
                people.append(
                    (pg, typed, linked, cg, company_score[cg], copy_ == 0 and ci in star_set)
                )
        for _ in range(max(1, len(people) // 20)):  # people with no Salesforce contact
            n_person += 1
            pg = gsid("P", n_person)
            first, last = _FIRST[int(r() * n_first)], _LAST[int(r() * n_last)]
            company = gsid("C", 1 + int(r() * n_comp))
            email = f"{first}.{last}.{n_person}@example.org".lower()
            created = now_s - int(r() * 900 * 86400) - 60
            person_rows.add(
                (
                    pg,
                    clock.gs(created),
                    clock.gs(stamp_after(created)),
                    f"{first} {last}",
                    first,
                    last,
                    email,
                    None,
                    company,
                    "User",
                )
            )
            people.append((pg, email, None, company, company_score.get(company, 60.0), False))
        person_rows.finish()

        # ---- NPS survey answers ----------------------------------------------------------------
        ans_cols = (
            "Gsid",
            "CreatedDate",
            "ModifiedDate",
            "SurveyId",
            "PersonId",
            "CompanyId",
            "ParticipantEmail",
            "SfdcContactId",
            "NPSScore",
            "ResponseDate",
        )
        surveys = [gsid("S", 900_000_000 + q) for q in range(8)]  # one NPS survey a quarter
        ans_rows = _Sink(gs, GAINSIGHT, "SurveyUserAnswer", ans_cols, "ModifiedDate")
        n_ans = 0
        nps_tally: dict[str, list[int]] = {}
        for pg, email, linked, cg, score, star in people:
            if r() >= 0.4 and not star:
                continue
            k = 1 + int(r() * r() * 3)
            for a in range(k):
                n_ans += 1
                q = 0 if star and a == 0 else int(r() * 8)  # a star answered the last survey
                responded = now_s - int((q * 91 + r() * 90) * 86400) - 60
                responded = max(responded, now_s - 729 * 86400)
                x = -1.0 if star else r() * 100
                promoter_p = 25 + score * 0.45
                if x < promoter_p:
                    nps = 9 + int(r() * 2)
                elif x < promoter_p + 30:
                    nps = 7 + int(r() * 2)
                else:
                    nps = int(r() * 7)
                tally = nps_tally.get(cg)
                if tally is None:
                    tally = nps_tally[cg] = [0, 0, 0]
                tally[0] += nps >= 9
                tally[1] += nps <= 6
                tally[2] += 1
                ans_rows.add(
                    (
                        gsid("S", n_ans),
                        clock.gs(responded),
                        clock.gs(responded),
                        surveys[q],
                        pg,
                        cg,
                        email,
                        linked,
                        nps,
                        clock.gs(responded),
                    )
                )
        ans_rows.finish()
        # Company.NPS is Gainsight's read-only roll-up of the answers.
        nps_by_company = {
            cg: round(100.0 * (pro - det) / total) for cg, (pro, det, total) in nps_tally.items()
        }
        comp_rows = [(*row, nps_by_company.get(row[0])) for row in comp_rows]
        comp_rows.sort(key=_BY_GS_STAMP)
        gs.insert_rows(GAINSIGHT, "Company", (*comp_cols, "NPS"), comp_rows)
        del comp_rows

        # ---- The custom object: advocacy programme memberships ---------------------------------
        prog_cols = (
            "Gsid",
            "CreatedDate",
            "ModifiedDate",
            "PersonId__gc",
            "CompanyId__gc",
            "Program__gc",
            "Membership_Status__gc",
            "Joined_Date__gc",
        )
        prog_rows = _Sink(gs, GAINSIGHT, "Advocacy_Program__gc", prog_cols, "ModifiedDate")
        n_prog = 0
        for pg, _email, linked, cg, _score, _star in people:
            if linked is None or r() >= 0.04:
                continue
            n_prog += 1
            joined_days = int(r() * 700)
            created = now_s - joined_days * 86400 - 60
            prog_rows.add(
                (
                    gsid("A", n_prog),
                    clock.gs(created),
                    clock.gs(stamp_after(created)),
                    pg,
                    cg,
                    ("Customer Advisory Board", "Champions", "Beta Testers")[int(r() * 3)],
                    ("Active", "Active", "Active", "Paused", "Left")[int(r() * 5)],
                    clock.date(-joined_days),
                )
            )
        prog_rows.finish()

    # Gainsight needs only the accounts and contacts: a big org seeds it in a second process
    # (its own file) while this one carries on with Salesforce.
    gs_path = gainsight_path(store.path)
    child = None
    if parallel if parallel is not None else accounts >= PARALLEL_MIN_ACCOUNTS:
        child = multiprocessing.get_context("fork").Process(
            target=_write_gainsight, args=(gainsight, gs_path), daemon=True
        )
        child.start()

    # ---- Opportunities ---------------------------------------------------------------------
    opp_cols = (
        "Id",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "AccountId",
        "Name",
        "Type",
        "StageName",
        "IsClosed",
        "IsWon",
        "CloseDate",
        "Amount",
        "Renewal_Risk__c",
    )
    opp_rows = _Sink(store, SALESFORCE, "Opportunity", opp_cols, "SystemModstamp")
    n_opp = 0
    for ai in range(accounts):
        kinds: list[str] = []
        if acc_type[ai] == "Customer":
            kinds.append("Renewal")
        if r() < 0.35:
            kinds.append("Upsell" if acc_type[ai] == "Customer" else "New Business")
        for kind in kinds:
            n_opp += 1
            close_in = int(r() * 450) - 180
            closed = close_in < 0
            if closed:
                stage = "Closed Won" if r() < 0.8 else "Closed Lost"
            else:
                stage = s.OPP_STAGES[int(r() * 4)]
            created = max(acc_since[ai], now_s - (200 + close_in) * 86400)
            created = min(created, now_s - 3600)
            stamp = stamp_after(created)
            risk = _RISK[int(r() * len(_RISK))] if kind == "Renewal" and not closed else None
            opp_rows.add(
                (
                    sf_id("006", n_opp),
                    0,
                    clock.sf(created),
                    (stamp_text := clock.sf(stamp)),
                    stamp_text,
                    acc_ids[ai],
                    f"{acc_name[ai]} - {kind}",
                    kind,
                    stage,
                    1 if closed else 0,
                    1 if stage == "Closed Won" else 0,
                    clock.date(close_in),
                    float(1000 * (5 + int(r() * 400))),
                    risk,
                )
            )
    counts["Opportunity"] = opp_rows.finish()

    # ---- Cases -----------------------------------------------------------------------------
    case_cols = (
        "Id",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "CaseNumber",
        "AccountId",
        "ContactId",
        "Subject",
        "Priority",
        "Status",
        "IsClosed",
        "IsEscalated",
        "ClosedDate",
    )
    case_rows = _Sink(store, SALESFORCE, "Case", case_cols, "SystemModstamp")
    n_case = 0
    per_seg = {"Enterprise": 6, "Mid-Market": 3, "SMB": 1}
    for ai in range(accounts):
        k = int(r() * (per_seg[acc_seg[ai]] + 1) * scale)
        lo, hi = acc_contacts[ai]
        troubled = r() < 0.04  # a few accounts are in a crisis right now
        for j in range(k):
            n_case += 1
            opened = now_s - int(r() * 540 * 86400) - 60
            is_open = r() < 0.12 or (troubled and j == 0)
            if troubled and j == 0:
                opened = now_s - int((3 + r() * 40) * 86400)
            escalated = (troubled and j == 0) or r() < 0.02
            priority = "High" if troubled and j == 0 else _PRIORITY[int(r() * len(_PRIORITY))]
            closed_at = None if is_open else min(now_s - 1, opened + int(r() * 20 * 86400) + 600)
            status = (
                ("Escalated" if escalated else ("New", "Working")[int(r() * 2)])
                if is_open
                else "Closed"
            )
            touched = closed_at if closed_at else opened + int(r() * (now_s - opened))
            case_rows.add(
                (
                    sf_id("500", n_case),
                    0,
                    clock.sf(opened),
                    (stamp_text := clock.sf(touched)),
                    stamp_text,
                    f"{n_case:08d}",
                    acc_ids[ai],
                    con_ids[lo + int(r() * (hi - lo))],
                    _SUBJECTS[int(r() * len(_SUBJECTS))],
                    priority,
                    status,
                    0 if is_open else 1,
                    1 if escalated else 0,
                    clock.sf(closed_at) if closed_at else None,
                )
            )
    counts["Case"] = case_rows.finish()

    # ---- Reference requests (asks): concentrated on a few visible advocates ----------------
    ask_cols = (
        "Id",
        "IsDeleted",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "Name",
        "Contact__c",
        "Account__c",
        "Type__c",
        "Status__c",
        "Requested_Date__c",
        "Team__c",
    )
    ask_rows = _Sink(store, SALESFORCE, "Reference_Request__c", ask_cols, "SystemModstamp")
    total_asks = int(len(con_ids) * 0.25)
    for n_ask in range(1, total_asks + 1):
        x = r()
        if x < 0.55:
            ci = stars[int(r() * r() * len(stars))]  # squared: the first stars are the busiest
        elif x < 0.92:
            ci = willing[int(r() * len(willing))]
        else:
            ci = int(r() * len(con_ids))
        days_ago = int(min(r(), r()) * 540)
        requested = now_s - days_ago * 86400 - int(r() * 86400)
        requested = min(requested, now_s - 1)
        if days_ago < 21:
            status = ("Requested", "Accepted")[int(r() * 2)]
        else:
            status = ("Completed", "Completed", "Completed", "Declined", "Accepted")[int(r() * 5)]
        stamp = stamp_after(requested)
        ask_rows.add(
            (
                sf_id("a0X", n_ask),
                0,
                clock.sf(requested),
                clock.sf(stamp),
                clock.sf(stamp),
                f"RR-{n_ask:06d}",
                con_ids[ci],
                acc_ids[con_acc[ci]],
                _ASK_TYPE[int(r() * len(_ASK_TYPE))],
                status,
                clock.date(-days_ago),
                _TEAM[int(r() * len(_TEAM))],
            )
        )
    counts["Reference_Request__c"] = ask_rows.finish()
    if progress:
        progress("salesforce done")

    store.create_indexes()
    if child is None:
        _write_gainsight(gainsight, gs_path)
    else:
        child.join()
        if child.exitcode != 0:
            msg = f"seeding Gainsight failed in the child process (exit code {child.exitcode})"
            raise RuntimeError(msg)
    store.attach_gainsight()
    for obj in store.schemas[GAINSIGHT]:
        counts[obj] = int(store.fetchone(f"SELECT COUNT(*) FROM {store.table(GAINSIGHT, obj)}")[0])
    if progress:
        progress("gainsight done")
    return SeedSummary(counts)


def _write_gainsight(fill: Callable[[SandboxStore], None], path: Path) -> None:
    """Make the Gainsight file at ``path`` and fill it."""
    gs = SandboxStore(path, systems=(GAINSIGHT,))
    try:
        fill(gs)
        gs.create_indexes()
    finally:
        gs.close()
