"""The Gainsight objects of a seeded org, one function per object, in the order they draw.

Gainsight draws from its own random stream (``"{seed}:gainsight"``) and needs only the seeded
accounts and contacts, so a big org seeds it in a second process while Salesforce carries on.
Companies are written last: their ``NPS`` is the roll-up of the survey answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from sandbox.ids import gsid
from sandbox.seed.salesforce import Accounts, Contacts
from sandbox.seed.tools import Clock, Draw, Sink
from sandbox.seed.words import Words
from sandbox.store import GAINSIGHT, SandboxStore

_BY_GS_STAMP = itemgetter(2)
#: Four NPS surveys a year, two years back: a survey's index is its quarter (0 = the last one).
_SURVEYS = 8

COMPANY_COLUMNS = (
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


@dataclass
class Companies:
    """Seeded companies, held in memory until the NPS roll-up is known."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    by_account: list[str | None] = field(default_factory=list)  # company gsid per account
    score: dict[str, float] = field(default_factory=dict)  # health score per company gsid


class Person(NamedTuple):
    """What the survey answers and memberships need of a seeded person."""

    gsid: str
    email: str  # as typed, with its stray case and whitespace
    contact_id: str | None
    company: str
    company_score: float
    star: bool


def seed_gainsight(
    gs: SandboxStore, seed: int, clock: Clock, words: Words, accounts: Accounts, contacts: Contacts
) -> None:
    """Seed every Gainsight object into ``gs`` from the seeded accounts and contacts."""
    draw = Draw(random.Random(f"{seed}:gainsight").random, clock)
    companies = draw_companies(draw, words, accounts)
    people = seed_people(gs, draw, words, contacts, companies)
    nps = seed_nps_answers(gs, draw, people)
    store_companies(gs, companies, nps)
    del companies  # a big org's companies are a lot of tuples; the programmes don't need them
    seed_programs(gs, draw, words, people)


def draw_companies(draw: Draw, words: Words, accounts: Accounts) -> Companies:
    """``Company`` rows, kept in memory until their NPS roll-up is known.

    Most accounts have a company (a few without ``SfdcAccountId``); some companies exist only
    in Gainsight.
    """
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    out = Companies(by_account=[None] * len(accounts.ids))
    stage_t = words.company_stage
    n_comp = 0
    for ai, atype in enumerate(accounts.type):
        if atype == "Prospect" or r() < 0.04:
            continue
        n_comp += 1
        cg = gsid("C", n_comp)
        out.by_account[ai] = cg
        score = max(1.0, min(100.0, 72 + (r() + r() + r() - 1.5) * 45))
        out.score[cg] = score
        since = accounts.created[ai]
        created = min(since + 86400, now_s - 60)
        stamp = stamp_after(created)
        out.rows.append(
            (
                cg,
                clock.gs(created),
                clock.gs(stamp),
                accounts.name[ai],
                accounts.ids[ai] if r() >= 0.03 else None,
                None,
                float(10000 * (1 + int(r() * 300))),
                stage_t[int(r() * len(stage_t))],
                "Churned" if atype == "Former Customer" else "Active",
                round(score, 1),
                clock.date(int(r() * 365)),
                clock.date(-(now_s - since) // 86400),
                1 if r() < 0.03 else 0,
                1 if score < 35 and r() < 0.6 else 0,
            )
        )
    words_a = words.company_name_first
    for _ in range(max(1, len(accounts.ids) // 50)):  # companies that exist only in Gainsight
        n_comp += 1
        created = now_s - int(r() * 700 * 86400) - 60
        out.rows.append(
            (
                gsid("C", n_comp),
                clock.gs(created),
                clock.gs(stamp_after(created)),
                f"{words_a[int(r() * len(words_a))]} Prospect {n_comp}",
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
    return out


def seed_people(
    gs: SandboxStore, draw: Draw, words: Words, contacts: Contacts, companies: Companies
) -> list[Person]:
    """``Person``: most contacts of a company, plus some people with no Salesforce contact.

    Emails are typed messily (case, whitespace), a few people are duplicated, most carry
    ``SfdcContactId``.
    """
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
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
    rows = Sink(gs, GAINSIGHT, "Person", columns, "ModifiedDate")
    people: list[Person] = []
    star_set = set(contacts.stars)
    n_person = 0
    for ci, cid in enumerate(contacts.ids):
        cg = companies.by_account[contacts.account[ci]]
        if cg is None or r() < 0.12:
            continue
        email = contacts.email[ci]
        x = r()
        if x < 0.15:
            email = email.title()  # "Jane.Doe@Acme.Com"
        elif x < 0.2:
            email = f" {email.upper()} "
        elif x < 0.22:
            email = email + " "
        dup = r() < 0.01
        first, last = contacts.first[ci], contacts.last[ci]
        for copy_ in range(2 if dup else 1):
            n_person += 1
            pg = gsid("P", n_person)
            linked = cid if (copy_ == 0 and r() < 0.8) else None
            typed = email if copy_ == 0 else email.strip().upper()
            created = now_s - int(r() * 900 * 86400) - 60
            rows.add(
                (
                    pg,
                    clock.gs(created),
                    clock.gs(stamp_after(created)),
                    f"{first} {last}",
                    first,
                    last,
                    typed,
                    linked,
                    cg,
                    "Champion" if contacts.opted_in[ci] and r() < 0.5 else "User",
                )
            )
            star = copy_ == 0 and ci in star_set
            people.append(Person(pg, typed, linked, cg, companies.score[cg], star))
    first_t, last_t = words.first_names, words.last_names
    n_comp = len(companies.rows)
    for _ in range(max(1, len(people) // 20)):  # people with no Salesforce contact
        n_person += 1
        pg = gsid("P", n_person)
        first, last = first_t[int(r() * len(first_t))], last_t[int(r() * len(last_t))]
        company = gsid("C", 1 + int(r() * n_comp))
        email = f"{first}.{last}.{n_person}@example.org".lower()
        created = now_s - int(r() * 900 * 86400) - 60
        rows.add(
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
        people.append(Person(pg, email, None, company, companies.score.get(company, 60.0), False))
    rows.finish()
    return people


def seed_nps_answers(gs: SandboxStore, draw: Draw, people: list[Person]) -> dict[str, int]:
    """``SurveyUserAnswer``: NPS answers over two years; returns each company's NPS roll-up.

    Healthier companies have more promoters; stars answered the last survey as promoters.
    """
    r, clock, now_s = draw.r, draw.clock, draw.now
    columns = (
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
    surveys = [gsid("S", 900_000_000 + q) for q in range(_SURVEYS)]
    rows = Sink(gs, GAINSIGHT, "SurveyUserAnswer", columns, "ModifiedDate")
    n_ans = 0
    tally: dict[str, list[int]] = {}  # company -> [promoters, detractors, answers]
    for pg, email, linked, cg, score, star in people:
        if r() >= 0.4 and not star:
            continue
        k = 1 + int(r() * r() * 3)
        for a in range(k):
            n_ans += 1
            q = 0 if star and a == 0 else int(r() * _SURVEYS)  # a star answered the last survey
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
            counts = tally.get(cg)
            if counts is None:
                counts = tally[cg] = [0, 0, 0]
            counts[0] += nps >= 9
            counts[1] += nps <= 6
            counts[2] += 1
            rows.add(
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
    rows.finish()
    return {cg: round(100.0 * (pro - det) / total) for cg, (pro, det, total) in tally.items()}


def store_companies(gs: SandboxStore, companies: Companies, nps: dict[str, int]) -> None:
    """Write the companies, each with ``NPS``: Gainsight's read-only roll-up of the answers."""
    rows = [(*row, nps.get(row[0])) for row in companies.rows]
    rows.sort(key=_BY_GS_STAMP)
    gs.insert_rows(GAINSIGHT, "Company", (*COMPANY_COLUMNS, "NPS"), rows)


def seed_programs(gs: SandboxStore, draw: Draw, words: Words, people: list[Person]) -> None:
    """``Advocacy_Program__gc`` (the custom object): a few linked people in a programme."""
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
        "Gsid",
        "CreatedDate",
        "ModifiedDate",
        "PersonId__gc",
        "CompanyId__gc",
        "Program__gc",
        "Membership_Status__gc",
        "Joined_Date__gc",
    )
    rows = Sink(gs, GAINSIGHT, "Advocacy_Program__gc", columns, "ModifiedDate")
    program_t, status_t = words.program, words.membership_status
    n_prog = 0
    for person in people:
        if person.contact_id is None or r() >= 0.04:
            continue
        n_prog += 1
        joined_days = int(r() * 700)
        created = now_s - joined_days * 86400 - 60
        rows.add(
            (
                gsid("A", n_prog),
                clock.gs(created),
                clock.gs(stamp_after(created)),
                person.gsid,
                person.company,
                program_t[int(r() * len(program_t))],
                status_t[int(r() * len(status_t))],
                clock.date(-joined_days),
            )
        )
    rows.finish()
