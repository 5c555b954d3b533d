"""The Salesforce objects of a seeded org, one function per object, in the order they draw.

Accounts and contacts return what later objects (and Gainsight) need of them, column by
column; opportunities, cases and asks only write their rows. Every function takes the same
``Draw``: call them in the order of ``sandbox.seed.seed`` or the org changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox import schema as s
from sandbox.ids import sf_id
from sandbox.seed.tools import Draw, Sink
from sandbox.seed.words import Words
from sandbox.store import SALESFORCE, SandboxStore

#: Per segment: typical employees, contacts per account (lowest, spread), cases per account.
EMPLOYEES_BY_SEGMENT = {"Enterprise": 5000, "Mid-Market": 500, "SMB": 50}
CONTACTS_BY_SEGMENT = {"Enterprise": (8, 8), "Mid-Market": (4, 4), "SMB": (1, 4)}
CASES_BY_SEGMENT = {"Enterprise": 6, "Mid-Market": 3, "SMB": 1}

_SYSTEM_COLUMNS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")


@dataclass
class Accounts:
    """What later objects need of the seeded accounts, one list per column, by account index."""

    ids: list[str] = field(default_factory=list)
    segment: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    domain: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


@dataclass
class Contacts:
    """What later objects need of the seeded contacts, one list per column, by contact index."""

    ids: list[str] = field(default_factory=list)
    account: list[int] = field(default_factory=list)  # index into ``Accounts``
    email: list[str] = field(default_factory=list)
    first: list[str] = field(default_factory=list)
    last: list[str] = field(default_factory=list)
    opted_in: list[int] = field(default_factory=list)  # opted in and not out since
    by_account: list[tuple[int, int]] = field(default_factory=list)  # [start, end) per account
    willing: list[int] = field(default_factory=list)
    stars: list[int] = field(default_factory=list)

    def pick_advocates(self) -> None:
        """Choose the willing (opted in) and, among them, the over-asked "stars"."""
        self.willing = [i for i, o in enumerate(self.opted_in) if o] or list(range(len(self.ids)))
        # About 4% of the willing are the visible, over-asked advocates. Teams keep asking them
        # because they are happy promoters, so Gainsight knows them as such: what protects them
        # is fatigue, not a missing survey answer.
        self.stars = self.willing[::25]


def _home_industries(
    regions: tuple[str, ...], industries: tuple[str, ...]
) -> dict[str, tuple[str, str]]:
    """Per region, two home industries (a region's book leans to a few industries)."""
    names, kinds = sorted(set(regions)), sorted(set(industries))
    n = len(kinds)
    return {reg: (kinds[i % n], kinds[(i + len(names)) % n]) for i, reg in enumerate(names)}


def _industry(
    x: float, region: str, industries: tuple[str, ...], homes: dict[str, tuple[str, str]]
) -> str:
    """Half the accounts of a region are in one of its home industries, the rest at large.

    One draw, as before (seed version 10): every other value of the org stays the same. The
    structure makes reference matching meaningful: deals and advocates of a region share
    industries more often than chance.
    """
    if x < 0.5:
        home = homes[region]
        return home[int(x * 2 * len(home))]
    return industries[int((x - 0.5) * 2 * len(industries))]


def seed_accounts(store: SandboxStore, draw: Draw, words: Words, count: int) -> Accounts:
    """``Account``: names from word pairs, skewed region, segment, type and age."""
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
        *_SYSTEM_COLUMNS,
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
    rows = Sink(store, SALESFORCE, "Account", columns, "SystemModstamp")
    out = Accounts()
    words_a, words_b, suffixes = (
        words.company_name_first,
        words.company_name_second,
        words.company_suffixes,
    )
    region_t, segment_t, type_t, industry_t = (
        words.region,
        words.segment,
        words.account_type,
        words.industry,
    )
    n_b, n_c = len(words_b), len(suffixes)
    combos = len(words_a) * n_b
    homes = _home_industries(region_t, industry_t)
    for i in range(count):
        a, b = divmod(i % combos, n_b)
        round_ = i // combos
        name = f"{words_a[a]} {words_b[b]} {suffixes[(a + b) % n_c]}"
        domain = f"{words_a[a]}{words_b[b]}".lower()
        if round_:
            name += f" {round_ + 1}"
            domain += str(round_ + 1)
        region = region_t[int(r() * len(region_t))]
        segment = segment_t[int(r() * len(segment_t))]
        atype = type_t[int(r() * len(type_t))]
        since_days = 20 + int(r() * r() * 3000)
        created = now_s - since_days * 86400 - int(r() * 86400 * 30)
        stamp = stamp_after(created)
        countries = words.countries[region]
        emp = EMPLOYEES_BY_SEGMENT[segment]
        aid = sf_id("001", i + 1)
        rows.add(
            (
                aid,
                0,
                clock.sf(created),
                clock.sf(stamp),
                clock.sf(stamp),
                name,
                atype,
                _industry(r(), region, industry_t, homes),
                countries[int(r() * len(countries))],
                region,
                segment,
                clock.date(-since_days) if atype != "Prospect" else None,
                float(emp * (200 + int(r() * 400)) * 1000),
                emp + int(r() * emp * 3),
            )
        )
        out.ids.append(aid)
        out.segment.append(segment)
        out.type.append(atype)
        out.name.append(name)
        out.domain.append(domain)
        out.created.append(created)
    rows.finish()
    return out


#: Consent per activity beyond Reference Call: a type and the step of contact numbers giving it.
_CONSENT_STEPS = (
    ("Case Study", 3),
    ("Peer Review", 4),
    ("Speaking", 5),
    ("Logo Use", 7),
    ("Analyst Reference", 11),
    ("Beta/Advisory", 13),
)


def consent_types(n: int) -> str:
    """The consent multi-select of the ``n``-th contact (if opted in): derived from ``n``.

    Every consenting contact agrees to reference calls; other activities follow the number,
    so some consent to Reference Call only. No random draw: the other seeded values (and
    their order) stay what they were before the field existed.
    """
    return ";".join(["Reference Call", *(t for t, step in _CONSENT_STEPS if n % step == 0)])


def seed_contacts(
    store: SandboxStore, draw: Draw, words: Words, accounts: Accounts, scale: float
) -> Contacts:
    """``Contact``: more per enterprise account, consent given and sometimes withdrawn."""
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
        *_SYSTEM_COLUMNS,
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
        "Reference_Consent_Types__c",
        "Advocate_Override__c",
        "Advocate_Status__c",
        "Advocate_Reason__c",
    )
    rows = Sink(store, SALESFORCE, "Contact", columns, "SystemModstamp")
    out = Contacts()
    first_t, last_t, titles = words.first_names, words.last_names, words.titles
    n_first, n_last = len(first_t), len(last_t)
    n = 0
    for ai, segment in enumerate(accounts.segment):
        lo, width = CONTACTS_BY_SEGMENT[segment]
        k = max(1, round((lo + int(r() * width)) * scale))
        start = n
        created_acc = accounts.created[ai]
        enterprise = segment == "Enterprise"
        domain = accounts.domain[ai]
        for _ in range(k):
            n += 1
            first = first_t[int(r() * n_first)]
            last = last_t[int(r() * n_last)]
            cid = sf_id("003", n)
            email = f"{first}.{last}{n % 97 if r() < 0.3 else ''}@{domain}.com".lower()
            created = created_acc + int(r() * (now_s - created_acc))
            stamp = stamp_after(created)
            opt = r() < (0.35 if enterprise else 0.2)
            opted_out = r() < (0.12 if opt else 0.01)
            override = r() < 0.004
            opt_days = -int(r() * 700)
            rows.add(
                (
                    cid,
                    0,
                    clock.sf(created),
                    (stamp_text := clock.sf(stamp)),
                    stamp_text,
                    accounts.ids[ai],
                    first,
                    last,
                    f"{first} {last}",
                    email,
                    titles[int(r() * len(titles))],
                    1 if opt else 0,
                    clock.date(opt_days) if opt else None,
                    s.OPT_IN_SOURCES[int(r() * 4)] if opt else None,
                    1 if opted_out else 0,
                    consent_types(n) if opt else None,
                    1 if override else 0,
                    "Not Eligible" if override else None,
                    "Held by account team" if override else None,
                )
            )
            out.ids.append(cid)
            out.account.append(ai)
            out.email.append(email)
            out.first.append(first)
            out.last.append(last)
            out.opted_in.append(1 if opt and not opted_out else 0)
        out.by_account.append((start, n))
    rows.finish()
    out.pick_advocates()
    return out


def seed_opportunities(store: SandboxStore, draw: Draw, words: Words, accounts: Accounts) -> int:
    """``Opportunity``: a renewal per customer (some at risk), sometimes an upsell or new deal."""
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
        *_SYSTEM_COLUMNS,
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
    rows = Sink(store, SALESFORCE, "Opportunity", columns, "SystemModstamp")
    risk_t = words.renewal_risk
    n_opp = 0
    for ai, atype in enumerate(accounts.type):
        kinds: list[str] = []
        if atype == "Customer":
            kinds.append("Renewal")
        if r() < 0.35:
            kinds.append("Upsell" if atype == "Customer" else "New Business")
        for kind in kinds:
            n_opp += 1
            close_in = int(r() * 450) - 180
            closed = close_in < 0
            if closed:
                stage = "Closed Won" if r() < 0.8 else "Closed Lost"
            else:
                stage = s.OPP_STAGES[int(r() * 4)]
            created = max(accounts.created[ai], now_s - (200 + close_in) * 86400)
            created = min(created, now_s - 3600)
            stamp = stamp_after(created)
            risk = risk_t[int(r() * len(risk_t))] if kind == "Renewal" and not closed else None
            rows.add(
                (
                    sf_id("006", n_opp),
                    0,
                    clock.sf(created),
                    (stamp_text := clock.sf(stamp)),
                    stamp_text,
                    accounts.ids[ai],
                    f"{accounts.name[ai]} - {kind}",
                    kind,
                    stage,
                    1 if closed else 0,
                    1 if stage == "Closed Won" else 0,
                    clock.date(close_in),
                    float(1000 * (5 + int(r() * 400))),
                    risk,
                )
            )
    return rows.finish()


def seed_cases(
    store: SandboxStore,
    draw: Draw,
    words: Words,
    accounts: Accounts,
    contacts: Contacts,
    scale: float,
) -> int:
    """``Case``: mostly closed; a few accounts in a crisis have an open escalated High case."""
    r, clock, now_s = draw.r, draw.clock, draw.now
    columns = (
        *_SYSTEM_COLUMNS,
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
    rows = Sink(store, SALESFORCE, "Case", columns, "SystemModstamp")
    priority_t, open_status_t, subjects = (
        words.case_priority,
        words.open_case_status,
        words.case_subjects,
    )
    n_case = 0
    for ai, segment in enumerate(accounts.segment):
        k = int(r() * (CASES_BY_SEGMENT[segment] + 1) * scale)
        lo, hi = contacts.by_account[ai]
        troubled = r() < 0.04  # a few accounts are in a crisis right now
        for j in range(k):
            n_case += 1
            opened = now_s - int(r() * 540 * 86400) - 60
            is_open = r() < 0.12 or (troubled and j == 0)
            if troubled and j == 0:
                opened = now_s - int((3 + r() * 40) * 86400)
            escalated = (troubled and j == 0) or r() < 0.02
            priority = "High" if troubled and j == 0 else priority_t[int(r() * len(priority_t))]
            closed_at = None if is_open else min(now_s - 1, opened + int(r() * 20 * 86400) + 600)
            status = (
                ("Escalated" if escalated else open_status_t[int(r() * len(open_status_t))])
                if is_open
                else "Closed"
            )
            touched = closed_at if closed_at else opened + int(r() * (now_s - opened))
            rows.add(
                (
                    sf_id("500", n_case),
                    0,
                    clock.sf(opened),
                    (stamp_text := clock.sf(touched)),
                    stamp_text,
                    f"{n_case:08d}",
                    accounts.ids[ai],
                    contacts.ids[lo + int(r() * (hi - lo))],
                    subjects[int(r() * len(subjects))],
                    priority,
                    status,
                    0 if is_open else 1,
                    1 if escalated else 0,
                    clock.sf(closed_at) if closed_at else None,
                )
            )
    return rows.finish()


def seed_asks(
    store: SandboxStore, draw: Draw, words: Words, accounts: Accounts, contacts: Contacts
) -> int:
    """``Reference_Request__c`` (asks): concentrated on a few visible advocates."""
    r, clock, now_s, stamp_after = draw.r, draw.clock, draw.now, draw.stamp_after
    columns = (
        *_SYSTEM_COLUMNS,
        "Name",
        "Contact__c",
        "Account__c",
        "Type__c",
        "Status__c",
        "Requested_Date__c",
        "Team__c",
        "Opportunity__c",
    )
    rows = Sink(store, SALESFORCE, "Reference_Request__c", columns, "SystemModstamp")
    deal_for = _DealPicker(store, accounts)
    stars, willing, n_contacts = contacts.stars, contacts.willing, len(contacts.ids)
    type_t, team_t = words.ask_type, words.ask_team
    recent_t, past_t = words.recent_ask_status, words.past_ask_status
    for n_ask in range(1, int(n_contacts * 0.25) + 1):
        x = r()
        if x < 0.55:
            ci = stars[int(r() * r() * len(stars))]  # squared: the first stars are the busiest
        elif x < 0.92:
            ci = willing[int(r() * len(willing))]
        else:
            ci = int(r() * n_contacts)
        days_ago = int(min(r(), r()) * 540)
        requested = now_s - days_ago * 86400 - int(r() * 86400)
        requested = min(requested, now_s - 1)
        if days_ago < 21:
            status = recent_t[int(r() * len(recent_t))]
        else:
            status = past_t[int(r() * len(past_t))]
        stamp = stamp_after(requested)
        ask_type, team = type_t[int(r() * len(type_t))], team_t[int(r() * len(team_t))]
        day = clock.date(-days_ago)
        deal = (
            deal_for(n_ask, contacts.account[ci], day)
            if (ask_type, team) == ("Reference Call", "Sales")
            else None
        )
        rows.add(
            (
                sf_id("a0X", n_ask),
                0,
                clock.sf(requested),
                clock.sf(stamp),
                clock.sf(stamp),
                f"RR-{n_ask:06d}",
                contacts.ids[ci],
                accounts.ids[contacts.account[ci]],
                ask_type,
                status,
                day,
                team,
                deal,
            )
        )
    return rows.finish()


class _DealPicker:
    """The deal a sales reference call serves: another account's opportunity, open that day.

    Plausible, not random: a sales team asks an advocate to talk to a prospect of the same
    segment (a similar size), while the prospect's deal is open (created on or before the
    ask's day, closing on or after it), and never the advocate's own account. Among the
    fitting candidates the one closing first wins: a reference is asked for late in a deal,
    so an older ask mostly serves a deal that has closed since. Candidates are taken from the
    seeded opportunities by a stride of the ask's number, so the choice draws nothing from the
    random stream (every other record stays as it was); a sales ask with no fitting candidate
    among the few tried stays unlinked.
    """

    TRIES = 16

    def __init__(self, store: SandboxStore, accounts: Accounts) -> None:
        self.store = store
        self.table = store.table(SALESFORCE, "Opportunity")
        self.count = int(store.fetchone(f"SELECT COUNT(*) FROM {self.table}")[0])
        self.segment = dict(zip(accounts.ids, accounts.segment, strict=True))
        self.accounts = accounts

    def __call__(self, n_ask: int, advocate_account: int, day: str) -> str | None:
        if not self.count:
            return None
        own = self.accounts.ids[advocate_account]
        segment = self.accounts.segment[advocate_account]
        best: tuple[str, str] | None = None  # (close date, id)
        for k in range(self.TRIES):
            rowid = 1 + (n_ask * 7919 + k * 104_729) % self.count
            found = self.store.fetchone(
                f'SELECT "Id", "AccountId", "CreatedDate", "CloseDate" FROM {self.table} '
                "WHERE rowid = ?",
                (rowid,),
            )
            if found is None:
                continue
            opp_id, account_id, created, close = found
            if account_id == own or self.segment.get(account_id) != segment:
                continue
            if created[:10] <= day <= close and (best is None or (close, opp_id) < best):
                best = (close, str(opp_id))
        return best[1] if best else None
