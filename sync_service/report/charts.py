"""The report's charts: matplotlib drawn server-side to inline SVG.

Nothing is fetched when the page is read: text stays text in the SVG (``svg.fonttype: none``)
and falls back to the reader's sans-serif font. Colours are the Okabe-Ito palette, which stays
distinct for the common forms of colour blindness; stacked parts also carry hatching so that
a black-and-white print still tells them apart. Axes use thousands separators.

Each chart is drawn from one of the report's tables, never from the store, so the chart and
the table behind it cannot disagree. ``pyplot`` is not used: a ``Figure`` with its own SVG
canvas per chart keeps the module safe to call from the API's worker threads.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from sync_service.report.asks import TAIL
from sync_service.report.tables import Report, Section

#: Okabe & Ito (2008): distinguishable with deuteranopia, protanopia and tritanopia.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
#: Line hatches only: dots and circles cost hundreds of kilobytes of SVG per chart.
HATCHES: tuple[str, ...] = ("", "//", "\\\\", "xx", "--", "||", "++", "/")
#: One colour per status, kept across every chart: green available, orange tired, red paused.
STATUS_COLOURS: dict[str, str] = {
    "Eligible": "#009E73",
    "Fatigued": "#E69F00",
    "Suspended": "#D55E00",
    "Not Eligible": "#999999",
    "Opted Out": "#0072B2",
    "Gone from the CRM": "#CC79A7",
}
STATUS_HATCHES: dict[str, str] = {
    "Eligible": "",
    "Fatigued": "//",
    "Suspended": "xx",
    "Not Eligible": "||",
    "Opted Out": "\\\\",
    "Gone from the CRM": "++",
}
#: Ask outcomes: done in green, still open in blues, turned down in vermillion.
OUTCOME_STYLES: dict[str, tuple[str, str]] = {
    "completed": ("#009E73", ""),
    "accepted": ("#56B4E9", "//"),
    "requested": ("#999999", "||"),
    "declined": ("#D55E00", "xx"),
}
#: Most series a stacked chart shows; the rest are summed into "Other".
MAX_SERIES = 8

#: Style of every chart (typed loosely: matplotlib types rc keys as a long Literal).
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "hatch.linewidth": 0.6,
    "hatch.color": "#333333",
}


@dataclass(frozen=True)
class Chart:
    """One chart: its caption (also its accessible name) and its SVG markup."""

    key: str
    caption: str
    svg: str


def _thousands(x: float, _pos: int | None = None) -> str:
    return f"{x:,.0f}"


def _colour(i: int) -> tuple[str, str]:
    return PALETTE[i % len(PALETTE)], HATCHES[(i // len(PALETTE) + i) % len(HATCHES)]


def _series_style(name: str, i: int) -> tuple[str, str]:
    if name in STATUS_COLOURS:
        return STATUS_COLOURS[name], STATUS_HATCHES[name]
    if name in OUTCOME_STYLES:
        return OUTCOME_STYLES[name]
    return _colour(i)


_ID = re.compile(r'\b(id)="([^"]+)"')
_REF = re.compile(r'(url\(|xlink:href="|href=")#([^)"]+)')


def _svg(fig: Figure, key: str) -> str:
    out = io.StringIO()
    FigureCanvasSVG(fig)
    with mpl.rc_context({**_RC, "svg.hashsalt": key}):
        # constrained layout already fits labels and legends; "tight" would lay out twice
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    # Inline in HTML: drop the XML prolog and DOCTYPE, keep the <svg> element.
    text = text[text.index("<svg") :]
    # Several charts share one page: give every id (and every reference to one) the chart's
    # key, or the second chart's clip paths and patterns would point into the first.
    text = _ID.sub(lambda m: f'{m.group(1)}="{key}-{m.group(2)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}#{key}-{m.group(2)}", text)
    # A viewBox and no fixed size: the chart scales with the page and in print.
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    return text.replace("<svg", f'<svg role="img" class="chart" id="chart-{key}"', 1)


def _figure(width: float = 7.5, height: float = 3.2) -> tuple[Figure, Any]:
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
    return fig, ax


def _finish(ax: Any, *, ylabel: str | None = None, legend: bool = True) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    if ylabel:
        ax.set_ylabel(ylabel)
    handles, labels = ax.get_legend_handles_labels()
    if legend and len(handles) > 1:
        # top to bottom, as the parts are stacked
        ax.legend(
            handles[::-1],
            labels[::-1],
            frameon=False,
            fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )


def _top_series(totals: dict[str, float]) -> list[str]:
    names = sorted(totals, key=lambda k: (-totals[k], k))
    return names if len(names) <= MAX_SERIES else [*names[: MAX_SERIES - 1], "Other"]


def _stacked_bars(
    key: str,
    caption: str,
    labels: Sequence[str],
    series: dict[str, list[float]],
    ylabel: str,
    *,
    height: float = 3.2,
) -> Chart:
    with mpl.rc_context(_RC):
        fig, ax = _figure(height=height)
        bottom = [0.0] * len(labels)
        x = list(range(len(labels)))
        for i, (name, values) in enumerate(series.items()):
            colour, hatch = _series_style(name, i)
            ax.bar(
                x,
                values,
                bottom=bottom,
                label=name.capitalize() if name in OUTCOME_STYLES else name,
                color=colour,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.4,
                width=0.8,
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        step = max(1, len(labels) // 12)
        shown = [labels[i] for i in x[::step]]
        if max(map(len, shown), default=0) > 3:
            ax.set_xticks(x[::step], shown, rotation=45, ha="right")
        else:
            ax.set_xticks(x[::step], shown)
        ax.grid(axis="x", visible=False)
        _finish(ax, ylabel=ylabel)
        return Chart(key, caption, _svg(fig, key))


def _hbars(
    key: str,
    caption: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    colours: Sequence[str] | None = None,
    hatches: Sequence[str] | None = None,
    targets: Sequence[float | None] | None = None,
    xlabel: str = "",
) -> Chart:
    height = 0.9 + 0.24 * max(1, len(labels))
    with mpl.rc_context(_RC):
        fig, ax = _figure(height=min(height, 9.0))
        y = list(range(len(labels)))
        ax.barh(
            y,
            values,
            color=colours or PALETTE[0],
            hatch=hatches,
            edgecolor="white",
            linewidth=0.4,
            height=0.7,
        )
        if targets and any(t is not None for t in targets):
            ty = [yy for yy, t in zip(y, targets, strict=True) if t is not None]
            tx = [t for t in targets if t is not None]
            ax.scatter(tx, ty, marker="|", s=180, color="#000000", linewidths=2, zorder=3)
        for yy, v in zip(y, values, strict=True):
            ax.annotate(
                _thousands(v),
                (v, yy),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(y, list(labels))
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        if xlabel:
            ax.set_xlabel(xlabel)
        return Chart(key, caption, _svg(fig, key))


def pool_charts(section: Section) -> list[Chart]:
    """A stacked area of contacts per status, week by week."""
    table = section.table("pool")
    if not table.rows:
        return []
    statuses = [c.key for c in table.columns[1:]]
    weeks = [r[0] for r in table.rows]
    with mpl.rc_context(_RC):
        fig, ax = _figure(height=3.4)
        values = [[float(r[i + 1]) for r in table.rows] for i in range(len(statuses))]
        styles = [_series_style(s, i) for i, s in enumerate(statuses)]
        stacks = ax.stackplot(
            weeks,
            *values,
            labels=statuses,
            colors=[s[0] for s in styles],
            edgecolor="white",
            linewidth=0.3,
        )
        for poly, (_, hatch) in zip(stacks, styles, strict=True):
            poly.set_hatch(hatch)
        ax.set_xlim(weeks[0], weeks[-1])
        ax.grid(axis="x", visible=False)
        fig.autofmt_xdate()
        _finish(ax, ylabel="contacts")
        return [Chart("pool", "Contacts per status at the end of each week", _svg(fig, "pool"))]


def utilisation_charts(section: Section) -> list[Chart]:
    """The asks-per-advocate distribution, and the violations by team and by ask type."""
    spread = section.table("utilisation")
    buckets: dict[str, float] = defaultdict(float)
    tail = f"{TAIL}+"
    for asks, advocates in spread.rows:
        buckets[str(asks) if asks < TAIL else tail] += advocates
    labels = [str(n) for n in range(TAIL) if str(n) in buckets]
    labels += [tail] if tail in buckets else []
    out = [
        _stacked_bars(
            "utilisation",
            "Advocates by number of asks in the window",
            labels,
            {"advocates": [buckets[lb] for lb in labels]},
            "advocates",
            height=2.4,
        )
    ]
    violations = section.table("violations")
    for by, pos, key in (("team", 0, "violations-team"), ("ask type", 1, "violations-type")):
        per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for row in violations.rows:
            per[row[pos]][row[2]] += row[3]
        if not per:
            continue
        order = sorted(per, key=lambda k: -sum(per[k].values()))
        statuses = [
            s for s in ("Fatigued", "Suspended", "Opted Out") if any(s in per[k] for k in order)
        ]
        out.append(
            _stacked_bars(
                key,
                f"Asks made while the contact was unavailable, by {by}",
                order,
                {s: [per[k].get(s, 0.0) for k in order] for s in statuses},
                "asks",
            )
        )
    return out


def coverage_charts(section: Section) -> list[Chart]:
    """Per field, Eligible advocates per value with the target marked; gaps in vermillion."""
    per: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in section.table("coverage").rows:
        per[row[0]].append(row)
    out = []
    for field, rows in per.items():
        rows = rows[:30]  # the gaps and the largest values; the table has them all
        out.append(
            _hbars(
                f"coverage-{field}",
                f"Eligible advocates by {field}"
                + (" (first 30)" if len(per[field]) > 30 else "")
                + ("; the black tick is the target" if any(r[4] is not None for r in rows) else ""),
                [str(r[1]) for r in rows],
                [float(r[2]) for r in rows],
                colours=["#D55E00" if r[5] else "#009E73" for r in rows],
                hatches=["//" if r[5] else "" for r in rows],
                targets=[r[4] for r in rows],
                xlabel="Eligible advocates",
            )
        )
    return out


def demand_charts(section: Section) -> list[Chart]:
    """Asks per month by team and by type, and the outcomes per month."""
    rows = section.table("demand").rows
    months = sorted({r[0] for r in rows})
    out = []
    for pos, key, caption in (
        (1, "demand-team", "Asks per month by team"),
        (2, "demand-type", "Asks per month by ask type"),
        (3, "demand-outcome", "Asks per month by outcome"),
    ):
        totals: dict[str, float] = defaultdict(float)
        for r in rows:
            totals[r[pos]] += r[4]
        keep = _top_series(totals)
        series: dict[str, list[float]] = {name: [0.0] * len(months) for name in keep}
        for r in rows:
            name = r[pos] if r[pos] in series else "Other"
            series[name][months.index(r[0])] += r[4]
        if months:
            out.append(_stacked_bars(key, caption, months, series, "asks"))
    return out


def retention_charts(section: Section) -> list[Chart]:
    """Where the advocates Eligible at the window's start are now."""
    rows = section.table("retention").rows
    if not rows:
        return []
    names = [r[0] for r in rows]
    return [
        _hbars(
            "retention",
            section.tables[0].title,
            names,
            [float(r[1]) for r in rows],
            colours=[_series_style(n, i)[0] for i, n in enumerate(names)],
            hatches=[_series_style(n, i)[1] for i, n in enumerate(names)],
            xlabel="contacts",
        )
    ]


def most_asked_charts(section: Section) -> list[Chart]:
    """Asks per most-asked contact, coloured by their status now."""
    rows = section.table("most-asked").rows
    if not rows:
        return []
    statuses = [r[4] or "Not evaluated" for r in rows]
    return [
        _hbars(
            "most-asked",
            "Asks in the window of the most-asked contacts (colour: status now)",
            [r[1] or r[0] for r in rows],
            [float(r[3]) for r in rows],
            colours=[STATUS_COLOURS.get(s, "#999999") for s in statuses],
            hatches=[STATUS_HATCHES.get(s, "") for s in statuses],
            xlabel="asks",
        )
    ]


def _paired_bars(
    key: str,
    caption: str,
    labels: Sequence[str],
    series: dict[str, list[float | None]],
    *,
    percent: bool = False,
) -> Chart:
    """Bars side by side per label, one per series (a missing value leaves a gap)."""
    with mpl.rc_context(_RC):
        fig, ax = _figure(height=3.0)
        width = 0.8 / max(1, len(series))
        x = list(range(len(labels)))
        for i, (name, values) in enumerate(series.items()):
            colour, hatch = _colour(i)
            xs = [xx + (i - (len(series) - 1) / 2) * width for xx in x]
            shown = [(xx, v) for xx, v in zip(xs, values, strict=True) if v is not None]
            ax.bar(
                [p[0] for p in shown],
                [100 * p[1] if percent else p[1] for p in shown],
                width=width,
                label=name,
                color=colour,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.4,
            )
        step = max(1, len(labels) // 12)
        ax.set_xticks(x[::step], [labels[i] for i in x[::step]], rotation=45, ha="right")
        ax.grid(axis="x", visible=False)
        _finish(ax, ylabel="% won" if percent else None)
        if percent:
            ax.set_ylim(0, 100)
        return Chart(key, caption, _svg(fig, key))


def influence_charts(section: Section) -> list[Chart]:
    """Influenced open and won amount per quarter; win rates with and without a reference."""
    table = section.table("influence")
    quarters = table.column("quarter")
    out = [
        _stacked_bars(
            "influence",
            "Amount of the deals with a linked ask, per quarter of the close date",
            quarters,
            {
                "Won": [float(v) for v in table.column("influenced_won")],
                "Open": [float(v) for v in table.column("influenced_open")],
            },
            "amount",
        )
    ]
    if any(n for n in table.column("closed_with")) or any(table.column("closed_without")):
        out.append(
            _paired_bars(
                "influence-win-rate",
                "Win rate of closed deals with a reference and without, per quarter",
                quarters,
                {
                    "with a reference": table.column("win_rate_with"),
                    "without": table.column("win_rate_without"),
                },
                percent=True,
            )
        )
    return out


DRAW: dict[str, Callable[[Section], list[Chart]]] = {
    "pool": pool_charts,
    "utilisation": utilisation_charts,
    "coverage": coverage_charts,
    "demand": demand_charts,
    "retention": retention_charts,
    "most-asked": most_asked_charts,
    "influence": influence_charts,
}


def draw(report: Report) -> dict[str, list[Chart]]:
    """Every section's charts, by section key."""
    return {s.key: DRAW[s.key](s) for s in report.sections}
