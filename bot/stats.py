"""The question log as a server owner reads it: a short summary, the coverage gaps, and a chart of questions per
day (answered vs not answered), for `/stats` and `articlebot stats`."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")  # files only: no display here

from matplotlib import dates as mdates
from matplotlib import pyplot as plt
from matplotlib.ticker import MaxNLocator

SERVERS = 5  # servers listed in the summary, most active first


def summary(stats: dict) -> str:
    """One line of counts, votes and latency, the most active servers when the questions came from several, then
    the most frequent unanswered (or voted-down) questions."""
    votes, latency, rate = stats["votes"], stats["median_latency_ms"], stats["abstention_rate"]
    lines = [
        f"Last {stats['days']} days: {stats['questions']} questions, {stats['answered']} answered, "
        f"{stats['abstained']} not answered"
        + (f" ({rate:.0%})" if rate is not None else "")
        + f"; {votes['up']} 👍, {votes['down']} 👎; median latency "
        + (f"{latency:.0f} ms" if latency is not None else "—"),
    ]
    lines += _servers(stats.get("servers", []))
    if stats["gaps"]:
        lines += ["", "Asked but not answered (or voted down), most frequent first:"]
        lines += [f"{g['count']:>4} × {g['question']}" for g in stats["gaps"]]
    return "\n".join(lines)


def _servers(servers: list[dict]) -> list[str]:
    """One line per server, most active first, capped at SERVERS; nothing when the questions came from one place."""
    if len(servers) < 2:
        return []
    lines = ["", "Most active servers:"]
    for server in servers[:SERVERS]:
        where = f"server {server['guild_id']}" if server["guild_id"] is not None else "DMs and the terminal"
        lines.append(f"{server['questions']:>4} asked, {server['answered']} answered · {where}")
    if len(servers) > SERVERS:
        lines.append(f"     … and {len(servers) - SERVERS} more")
    return lines


def chart_png(stats: dict) -> bytes:
    """Questions per day over the period, stacked answered / not answered, as a PNG."""
    counts = {d["date"]: d for d in stats["per_day"]}
    last = datetime.now(UTC).date()  # the log's days are UTC days
    days = [last - timedelta(days=n) for n in range(stats["days"] - 1, -1, -1)]
    asked = [counts.get(d.isoformat(), {}).get("questions", 0) for d in days]
    refused = [counts.get(d.isoformat(), {}).get("abstained", 0) for d in days]
    answered = [a - r for a, r in zip(asked, refused, strict=True)]
    figure, axes = plt.subplots(figsize=(8, 3), dpi=100)
    positions = mdates.date2num(days)
    axes.bar(positions, answered, color="#5865F2", label="answered")
    axes.bar(positions, refused, bottom=answered, color="#B5BAC1", label="not answered")
    axes.set_title(f"Questions per day, last {stats['days']} days")
    axes.legend(loc="upper left", frameon=False)
    axes.xaxis_date()
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
