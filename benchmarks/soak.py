"""Soak: the bot (`articlebot run`, a process of its own) on the Discord API emulator for N minutes.

M members ask questions (most answerable, some empty, over-long, or sent again too quickly), by mention and with
`/ask`, vote on answers and open "What was wrong?" boxes (submitting some, dismissing the rest); an admin `/add`s
a hostile PDF, adds a document of the server's own and `/rebuild`s midway. Every setting is the default but the
emulator's address.

Per minute: answer latency p50/p95 (question sent to answer seen by the emulator) and the bot process's RSS, open
file descriptors and threads. At the end: whether every question and click got exactly one reply, and the ratio
of the last minute's RSS to the second minute's (the target: within 10 %).

Usage: python benchmarks/soak.py [--minutes 10] [--members 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from discord_emulator import DiscordEmulator, RecordedRequest, UserFile

from bot.settings import BUNDLED_CORPUS, Settings

T = TypeVar("T")
RESULTS = ROOT / "benchmarks" / "results"
ARTICLEBOT = str(Path(sys.executable).parent / "articlebot")
QUESTIONS = yaml.safe_load((ROOT / "tests" / "questions.yaml").read_text(encoding="utf-8"))
START_SECONDS = 300  # model, reader and index load on a busy 2-core machine
REPLY_SECONDS = 120  # a question without a reply by then counts as unanswered
SCAN_SECONDS = 0.02
SAMPLE_SECONDS = 5.0
COOLDOWN_SECONDS = 3.0  # the default COOLDOWN_SECONDS: members wait longer between questions, but for "again"
MEAN_GAP_SECONDS = 30.0  # between a member's questions: 50 members ask about 100 questions a minute
KINDS = {"normal": 70, "empty": 8, "long": 7, "again": 15}  # "again": a second question within the cooldown
SLASH_SHARE = 0.25  # questions asked with /ask rather than by mention (empty ones always by mention)
VOTE_SHARE = 0.3  # answers voted on; half of them 👎, whose box is submitted half the time
LONG_COMMENT = "It never says where the secretariat is. " * 40  # past the box's 300 characters
FESTIVAL = (
    "---\ntitle: Harbour Lantern Festival\n---\n"
    "The lantern parade of the Harbour Lantern Festival is led by Captain Ilse Marrow.\n\n"
    + "\n\n".join(f"Stall {i} of the harbour market sells paper lanterns in shade {i}." for i in range(60))
    + "\n"
)


@dataclass
class Asked:
    """One question or click and what came back."""

    what: str  # normal, empty, long, again, vote, comment
    via: str  # mention, slash, click, modal
    key: int  # the message id (mention) or the interaction id
    minute: int
    sent_at: float
    answered_ms: float | None = None  # for answers with an embed


@dataclass
class Soak:
    """What the run recorded."""

    started: float
    asked: list[Asked] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    admin: dict[str, str] = field(default_factory=dict)

    def minute(self) -> int:
        return int((time.monotonic() - self.started) // 60)


class Seen:
    """The bot's requests as the emulator completes them, indexed by the message or interaction they answer
    (scanned incrementally: waiting on `emu.replies_to` would rescan every request on every poll)."""

    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu
        self._next = 0
        self._pending: list[RecordedRequest] = []
        self.replies: defaultdict[int, list[tuple[float, RecordedRequest]]] = defaultdict(list)
        self.responses: defaultdict[int, list[tuple[float, RecordedRequest]]] = defaultdict(list)

    async def run(self) -> None:
        """Index what completed since the last scan, until cancelled."""
        while True:
            self.scan()
            await asyncio.sleep(SCAN_SECONDS)

    def scan(self) -> None:
        """Index the requests completed since the last scan."""
        now, fresh = time.monotonic(), self.emu.requests[self._next :]
        self._next += len(fresh)
        waiting = []
        for request in self._pending + fresh:
            if request.status == 0:  # recorded before its handler ran: look again next time
                waiting.append(request)
            elif request.interaction_id is not None:
                self.responses[request.interaction_id].append((now, request))
            elif request.ok and request.method == "POST" and request.route == "/channels/{channel_id}/messages":
                reference = (request.body.get("message_reference") or {}).get("message_id")
                if reference is not None:
                    self.replies[int(reference)].append((now, request))
        self._pending = waiting

    async def reply(self, message_id: int) -> tuple[float, RecordedRequest] | None:
        """The first reply to a message, with when it was seen; None after REPLY_SECONDS."""
        found = await self._wait(lambda: self.replies.get(message_id))
        return found[0] if found else None

    async def response(self, interaction_id: int, index: int) -> tuple[float, RecordedRequest] | None:
        """The `index`-th request answering an interaction (0: the callback); None after REPLY_SECONDS."""
        found = await self._wait(lambda: len(self.responses.get(interaction_id, ())) > index)
        return self.responses[interaction_id][index] if found else None

    async def _wait(self, ready: Callable[[], T]) -> T | None:
        """`ready()` once it is truthy; None after REPLY_SECONDS."""
        deadline = time.monotonic() + REPLY_SECONDS
        while not (value := ready()):
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(SCAN_SECONDS)
        return value


def hostile_pdf() -> bytes:
    """A small PDF whose xref is right but whose page tree contains itself, under a page whose content stream
    claims a length far past the end of the file and is not the Flate data it says it is."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 1000000000 >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
        b"<< /Length 999999999 /Filter /FlateDecode >>\nstream\n" + bytes(range(256)) * 4 + b"\nendstream",
    ]
    data, offsets = b"%PDF-1.7\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(data))
        data += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, len(data))
    return data + b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + xref + trailer


async def member(emu: DiscordEmulator, seen: Seen, soak: Soak, user: int, rng: random.Random, end: float) -> None:
    """One member: a question every MEAN_GAP_SECONDS on average (never within the cooldown but for "again"),
    then maybe a vote on the answer."""
    while True:
        gap = rng.uniform(COOLDOWN_SECONDS + 0.5, 2 * MEAN_GAP_SECONDS - COOLDOWN_SECONDS - 0.5)
        await asyncio.sleep(min(gap, max(0.0, end - time.monotonic())))
        if time.monotonic() >= end:
            return
        what = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        slash = what in {"normal", "long"} and rng.random() < SLASH_SHARE
        ask = ask_slash if slash else ask_mention
        first = None
        if what == "again":  # a question, then another before the cooldown is over
            first = asyncio.create_task(ask_mention(emu, seen, soak, user, "normal", question_text("normal", rng)))
            await asyncio.sleep(0.2)
        answer = await ask(emu, seen, soak, user, what, question_text(what, rng))
        if first is not None:
            await first
        if answer is not None and rng.random() < VOTE_SHARE:
            await vote(emu, seen, soak, user, answer, rng)


def question_text(what: str, rng: random.Random) -> str:
    if what == "empty":
        return "   "
    if what == "long":
        return "why " * 200
    pool = QUESTIONS["answerable"] + QUESTIONS.get("unanswerable", [])
    case = rng.choice(pool)
    return case["question"] if isinstance(case, dict) else str(case)


async def ask_mention(
    emu: DiscordEmulator, seen: Seen, soak: Soak, user: int, what: str, text: str
) -> RecordedRequest | None:
    """Ask by mention; the reply if it is an answer (an embed)."""
    sent_at = time.monotonic()
    message = await emu.send_message(user, text, mention_bot=True)
    asked = Asked(what, "mention", message, soak.minute(), sent_at)
    soak.asked.append(asked)
    found = await seen.reply(message)
    if found is None or "embeds" not in found[1].body:
        return None
    asked.answered_ms = (found[0] - sent_at) * 1000
    return found[1]


async def ask_slash(
    emu: DiscordEmulator, seen: Seen, soak: Soak, user: int, what: str, text: str
) -> RecordedRequest | None:
    """Ask with /ask; the follow-up if it is an answer (deferred, then an embed)."""
    sent_at = time.monotonic()
    interaction = await emu.send_slash_command(user, "ask", {"question": text})
    asked = Asked(what, "slash", interaction.id, soak.minute(), sent_at)
    soak.asked.append(asked)
    callback = await seen.response(interaction.id, 0)
    if callback is None or callback[1].body.get("type") != 5:
        return None
    found = await seen.response(interaction.id, 1)
    if found is None or "embeds" not in (found[1].body or {}):
        return None
    asked.answered_ms = (found[0] - sent_at) * 1000
    return found[1]


async def vote(
    emu: DiscordEmulator, seen: Seen, soak: Soak, user: int, answer: RecordedRequest, rng: random.Random
) -> None:
    """Click 👍 or 👎 under an answer; a 👎 box is submitted (some comments over-long) or dismissed."""
    message = answer.response.get("resource", {}).get("message", answer.response)
    buttons = {b["emoji"]["name"]: b["custom_id"] for row in message.get("components", []) for b in row["components"]}
    if not buttons:
        return
    up = rng.random() < 0.5
    click = await emu.click_button(user, int(message["id"]), buttons["👍" if up else "👎"])
    soak.asked.append(Asked("vote", "click", click.id, soak.minute(), time.monotonic()))
    callback = await seen.response(click.id, 0)
    if up or callback is None or callback[1].body.get("type") != 9 or rng.random() < 0.5:
        return  # a 👍, or the box is dismissed
    text = LONG_COMMENT if rng.random() < 0.3 else "It should say where."
    custom_id = callback[1].body["data"]["components"][0]["components"][0]["custom_id"]
    submitted = await emu.submit_modal(user, click.id, {custom_id: text})
    soak.asked.append(Asked("comment", "modal", submitted.id, soak.minute(), time.monotonic()))
    await seen.response(submitted.id, 0)


async def admin_midway(emu: DiscordEmulator, seen: Seen, soak: Soak, admin: int, at: float) -> None:
    """At `at`: /add a hostile PDF, then a document of the server's own, then /rebuild; their outcomes."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    pdf = UserFile("hostile.pdf", hostile_pdf(), "application/pdf")
    soak.admin["add"] = await admin_command(emu, seen, admin, "add", {"file": pdf})
    festival = UserFile("festival.md", FESTIVAL.encode(), "text/markdown")
    soak.admin["add document"] = await admin_command(emu, seen, admin, "add", {"file": festival})
    soak.admin["rebuild"] = await admin_command(emu, seen, admin, "rebuild", {})


async def admin_command(emu: DiscordEmulator, seen: Seen, admin: int, name: str, options: dict[str, Any]) -> str:
    """Run an admin command and return the final text it shows (the progress message, then its edit)."""
    started = time.monotonic()
    interaction = await emu.send_slash_command(admin, name, options)
    done = await seen.response(interaction.id, 1)
    text = done[1].body.get("content", "") if done else "no outcome within the wait"
    print(f"  /{name} after {time.monotonic() - started:.1f} s: {text}", flush=True)
    return text


def sample(pid: int) -> dict[str, Any]:
    """RSS (MB), open file descriptors and threads of a process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
    }


async def sampler(soak: Soak, pid: int) -> None:
    """Sample the bot process every SAMPLE_SECONDS, until cancelled."""
    while True:
        soak.samples.append({"minute": soak.minute(), **sample(pid)})
        await asyncio.sleep(SAMPLE_SECONDS)


def environment(emu: DiscordEmulator, folder: Path) -> dict[str, str]:
    """What `articlebot` reads: the emulator, a writable corpus and the index and log in `folder`; every other
    setting its default (none of the developer's)."""
    clean = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {
        **clean,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_URL": emu.base_url,
        "DISCORD_GUILD_ID": str(emu.guild_id),
        "CORPUS_DIR": str(folder / "corpus"),
        "INDEX_DIR": str(folder / "index"),
        "SERVERS_DIR": str(folder / "servers"),
        "DATABASE_URL": f"sqlite:///{folder / 'articlebot.db'}",
        "LOG_LEVEL": "INFO",
    }


async def start_bot(emu: DiscordEmulator, folder: Path) -> asyncio.subprocess.Process:
    """Build the index, then start `articlebot run` and wait until its gateway session is ready."""
    env = environment(emu, folder)
    shutil.copytree(BUNDLED_CORPUS, folder / "corpus")
    subprocess.run([ARTICLEBOT, "build"], env=env, cwd=folder, check=True, capture_output=True)
    output = (folder / "bot.log").open("w", encoding="utf-8")
    bot = await asyncio.create_subprocess_exec(
        ARTICLEBOT, "run", env=env, cwd=folder, stdout=output, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + START_SECONDS
    while not any(s.ready for s in emu.gateway.sessions.values()):
        if bot.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not start; see {folder / 'bot.log'}")
        await asyncio.sleep(0.5)
    return bot


async def stop_bot(bot: asyncio.subprocess.Process) -> None:
    if bot.returncode is None:
        bot.terminate()
        try:
            await asyncio.wait_for(bot.wait(), 20)
        except TimeoutError:
            bot.kill()
            await bot.wait()


async def soak_run(minutes: float, members: int, seed: int, folder: Path) -> dict[str, Any]:
    """The whole run: start the bot, play the members and the admin, sample, then check the replies."""
    async with DiscordEmulator() as emu:
        users = [emu.add_member(f"member{n}") for n in range(members)]
        admin = emu.add_member("admin", admin=True)
        bot = await start_bot(emu, folder)
        seen, soak = Seen(emu), Soak(time.monotonic())
        end = soak.started + minutes * 60
        background = [asyncio.create_task(seen.run()), asyncio.create_task(sampler(soak, bot.pid))]
        try:
            rngs = [random.Random(seed * 1000 + n) for n in range(members)]
            await asyncio.gather(
                *(member(emu, seen, soak, u, rng, end) for u, rng in zip(users, rngs, strict=True)),
                admin_midway(emu, seen, soak, admin, soak.started + minutes * 30),
            )
            await asyncio.sleep(5)  # room for any duplicate reply to show up
            seen.scan()
            return report(soak, seen, emu, math.ceil(minutes))
        finally:
            for task in background:
                task.cancel()
            await stop_bot(bot)


def report(soak: Soak, seen: Seen, emu: DiscordEmulator, minutes: int) -> dict[str, Any]:
    """Per-minute figures of the minutes of load and the exactly-once check."""
    per_minute = [minute_figures(soak, m) for m in range(minutes)]
    replies = [replies_to(seen, a) for a in soak.asked]
    rss = [m["rss_mb"] for m in per_minute if m["rss_mb"] is not None]
    return {
        "per_minute": per_minute,
        "asked": len(soak.asked),
        "by_kind": {k: sum(a.what == k for a in soak.asked) for k in (*KINDS, "vote", "comment")},
        "exactly_once": sum(n == 1 for n in replies),
        "unanswered": sum(n == 0 for n in replies),
        "duplicated": sum(n > 1 for n in replies),
        "failed_requests": len(emu.failed_requests),
        "rss_last_to_second_minute": round(rss[-1] / rss[1], 3) if len(rss) >= 3 else None,
        "admin": soak.admin,
    }


def minute_figures(soak: Soak, minute: int) -> dict[str, Any]:
    """One minute: questions asked, answers and their latency, and the bot process's last sample."""
    asked = [a for a in soak.asked if a.minute == minute and a.via in {"mention", "slash"}]
    latencies = sorted(a.answered_ms for a in asked if a.answered_ms is not None)
    last = ([s for s in soak.samples if s["minute"] == minute] or [{}])[-1]
    return {
        "minute": minute + 1,
        "questions": len(asked),
        "answers": len(latencies),
        "p50_ms": round(statistics.median(latencies)) if latencies else None,
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))]) if latencies else None,
        "rss_mb": last.get("rss_mb"),
        "fds": last.get("fds"),
        "threads": last.get("threads"),
    }


def replies_to(seen: Seen, asked: Asked) -> int:
    """How many replies a question or click got: one message (mention); one callback, plus one follow-up after
    a defer (slash, click, modal)."""
    if asked.via == "mention":
        return len(seen.replies.get(asked.key, ()))
    made = [r for _, r in seen.responses.get(asked.key, ())]
    callbacks = [r for r in made if r.route.endswith("/callback")]
    if len(callbacks) != 1 or callbacks[0].body.get("type") != 5:
        return len(callbacks)
    followups = [r for r in made if r.method == "POST" and r.route == "/webhooks/{application_id}/{token}"]
    return len(followups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the members keep asking")
    parser.add_argument("--members", type=int, default=50, help="simulated members")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(soak_run(args.minutes, args.members, args.seed, Path(tmp)))
    for m in results["per_minute"]:
        print(
            f"minute {m['minute']:>3}: {m['questions']:>4} questions, {m['answers']:>4} answers, p50 {m['p50_ms']} ms,"
            f" p95 {m['p95_ms']} ms; RSS {m['rss_mb']} MB, {m['fds']} fds, {m['threads']} threads"
        )
    print(
        f"{results['asked']} questions and clicks {results['by_kind']}: {results['exactly_once']} replied to exactly"
        f" once, {results['unanswered']} not at all, {results['duplicated']} more than once;"
        f" {results['failed_requests']} failed requests; RSS last minute / second minute:"
        f" {results['rss_last_to_second_minute']}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"minutes": args.minutes, "members": args.members, **results}, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
