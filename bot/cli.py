"""The `articlebot` command: build the index, ask from the terminal, chat, or run the Discord bot."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.errors import KNOWN_ERRORS, InvalidQuestion
from bot.history import Conversations, Turn
from bot.knowledge import build_index, index_manager
from bot.questionlog import LogError, Origin, QuestionLog, open_log
from bot.replies import Answer, checked_note, document_line
from bot.settings import Settings, load_settings
from index.documents import DocumentError

if TYPE_CHECKING:
    from bot.engine import Engine

CHAT = "terminal"  # the terminal chat is one conversation


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(settings, verbose=args.verbose or args.command == "run")
        return args.handler(args, settings)
    except (*KNOWN_ERRORS, LogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="articlebot", description="Answers questions about an article, with citations."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (LOG_LEVEL) to standard error")
    commands = parser.add_subparsers(dest="command", required=True)

    build_cmd = commands.add_parser("build", help="(re)build the index from the corpus")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if the corpus has not changed")
    build_cmd.set_defaults(handler=_build)

    ask = commands.add_parser("ask", help="answer one question, or one per line with --batch")
    ask.add_argument("question", nargs="?", help="the question (omit with --batch)")
    ask.add_argument("--json", action="store_true", help="print JSON (JSON Lines with --batch)")
    ask.add_argument("--batch", metavar="FILE", help="read one question per line from FILE, or - for standard input")
    ask.set_defaults(handler=_ask)

    chat = commands.add_parser("chat", help="a conversation: each question may follow up on the ones before")
    chat.add_argument("--json", action="store_true", help="read questions from standard input, print JSON Lines")
    chat.set_defaults(handler=_chat)

    add = commands.add_parser("add", help="add web pages (URLs) or .txt/.md/.html/.pdf files to the corpus")
    add.add_argument("sources", nargs="+", metavar="URL|PATH")
    add.set_defaults(handler=_add)

    remove = commands.add_parser("remove", help="remove a document (its id, as `sources` lists it)")
    remove.add_argument("document", metavar="ID")
    remove.set_defaults(handler=_remove)

    sources = commands.add_parser("sources", help="list the indexed documents")
    sources.set_defaults(handler=_sources)

    stats = commands.add_parser("stats", help="what was asked: counts, votes, latency, the questions not answered")
    stats.add_argument("--days", type=int, default=30, help="the last N days (default 30)")
    stats.add_argument("--guild", type=int, metavar="ID", help="that server only (default: all, and each server)")
    output = stats.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--csv", action="store_true", help="export every logged question as CSV")
    stats.set_defaults(handler=_stats)

    run = commands.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    run.add_argument(
        "--chat-without-token",
        action="store_true",
        help="start the terminal chat instead when no token is set",
    )
    run.set_defaults(handler=_run, json=False)  # --chat-without-token starts the interactive chat
    return parser


def _build(args: argparse.Namespace, settings: Settings) -> int:
    report = build_index(settings, force=args.force)
    state = "up to date" if report.unchanged else "built"
    print(
        f"Index {state}: {report.documents} documents, {report.passages} passages, {report.sentences} sentences "
        f"in {report.seconds:.1f} s ({settings.index_dir})"
    )
    return 0


def _add(args: argparse.Namespace, settings: Settings) -> int:
    """Add each URL or file in turn; a failure is reported and the next one still tried."""
    indexes, failed = index_manager(settings), 0
    for source in args.sources:
        try:
            change = indexes.add_url(source) if "://" in source else indexes.add_file(Path(source).name, _read(source))
        except KNOWN_ERRORS as exc:
            print(f"error: {source}: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(change.describe())
    return 1 if failed else 0


def _remove(args: argparse.Namespace, settings: Settings) -> int:
    print(index_manager(settings).remove(args.document).describe())
    return 0


def _sources(args: argparse.Namespace, settings: Settings) -> int:
    sources = index_manager(settings).sources()
    print(f"Index built {sources.built_at} with {sources.model}: {sources.passages} passages.")
    for doc in sources.documents:
        print(f"- {doc.title}\n  {document_line(doc)}" + (f"\n  {doc.url}" if doc.url else ""))
    return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read it ({exc.strerror})") from exc


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    if (args.question is None) == (args.batch is None):
        print("error: give either a question or --batch FILE", file=sys.stderr)
        return 2
    engine, questions = _engine(settings), open_log(settings)
    if args.batch is not None:
        with _open_input(args.batch) as lines:
            for line in lines:
                print(json.dumps(_ask_json(engine, line.rstrip("\n"), questions), ensure_ascii=False), flush=True)
        return 0
    try:
        answer = _answered(engine, args.question)
    except InvalidQuestion as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(answer_json(answer), ensure_ascii=False, indent=2) if args.json else format_answer(answer))
    _record(questions, answer, "ask")
    return 0


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    """One conversation: each question is answered with the turns before it (HISTORY_TURNS)."""
    engine, questions = _engine(settings), open_log(settings)
    memory = Conversations(settings.history_turns, settings.history_ttl_minutes * 60)
    if args.json:
        for line in sys.stdin:
            print(json.dumps(_ask_json(engine, line.rstrip("\n"), questions, memory), ensure_ascii=False), flush=True)
        return 0
    print("Ask about the article; follow-up questions are welcome (Ctrl-D or 'quit' to leave).")
    for question in _prompt_lines():
        if question.strip().lower() in {"quit", "exit"}:
            break
        try:
            answer = _converse(engine, question, memory)
            print(format_answer(answer) + "\n")
            _record(questions, answer, "chat")
        except InvalidQuestion as exc:
            print(f"{exc}\n")
    return 0


def _engine(settings: Settings) -> Engine:
    """The answering engine: torch and the models load only for commands that answer."""
    from bot.engine import Engine

    return Engine(settings)


def _converse(engine: Engine, question: str, memory: Conversations) -> Answer:
    """Answer a turn of the terminal's one conversation and remember it."""
    answer = _answered(engine, question, memory.history(CHAT))
    memory.record(CHAT, Turn.of(answer))
    return answer


def _answered(engine: Engine, question: str, history: Sequence[Turn] = ()) -> Answer:
    """The engine's answer, written by the model server where GENERATOR_URL names one (see bot.generator)."""
    answer = engine.ask(question, history)
    return answer if engine.generator is None else asyncio.run(engine.generator.write(answer, history))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.discord_token is None:
        if args.chat_without_token:
            print("DISCORD_TOKEN is not set: starting the terminal chat instead of the Discord bot.")
            return _chat(args, settings)
        print(
            "error: DISCORD_TOKEN is not set: put your bot token in .env (see .env.example) or the environment",
            file=sys.stderr,
        )
        return 1
    from bot.discord_bot import run_bot  # discord.py is imported only when the bot runs

    return run_bot(settings)


def answer_json(answer: Answer) -> dict:
    """The `--json` shape: question, answer, short_answer, abstained, citations, see_also, confidence, timings_ms,
    answer_type."""
    data = answer.to_json()
    return {"question": data.pop("question"), "answer": data.pop("text"), **data}


def _ask_json(
    engine: Engine, question: str, questions: QuestionLog | None, memory: Conversations | None = None
) -> dict:
    """One line of JSON output: the answer (a conversation's next turn when given its memory) or the error."""
    try:
        answer = _converse(engine, question, memory) if memory is not None else _answered(engine, question)
    except InvalidQuestion as exc:
        return {"question": question, "error": str(exc)}
    _record(questions, answer, "ask" if memory is None else "chat")
    return answer_json(answer)


def _record(questions: QuestionLog | None, answer: Answer, front_end: str) -> None:
    if questions is not None:
        questions.record(answer, Origin(front_end), answer.latency_ms)


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    """The question log summarised (text or --json), or exported (--csv): of one server (--guild), or of all with a
    per-server breakdown."""
    from bot.stats import summary  # matplotlib is imported only for stats

    questions = QuestionLog.configured(settings)
    if args.csv:
        rows = list(questions.rows(args.days, args.guild))
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
    elif args.json:
        print(json.dumps(questions.stats(args.days, args.guild), ensure_ascii=False, indent=2))
    else:
        print(summary(questions.stats(args.days, args.guild)))
    return 0


def format_answer(answer: Answer, width: int = 100) -> str:
    """An answer as readable terminal text: the short answer and the sentences it comes from, then the numbered
    sources (or the closest passages)."""
    short = f"{answer.short_answer} — " if answer.short_answer else ""
    lines = [textwrap.fill(short + answer.text, width)]
    if note := checked_note(answer):
        lines.append(f"({note})")
    sources = answer.see_also if answer.abstained else answer.citations
    if sources:
        lines += ["", "See also:" if answer.abstained else "Sources:"]
    for c in sources:
        origin = f" — {c.source}" if c.source else ""
        lines.append(f"[{c.n}] {c.title}, {c.place}{origin}" + (f" <{c.url}>" if c.url else ""))
        lines.append(textwrap.fill(f"“{c.text}”", width, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)


def _open_input(name: str) -> TextIO:
    return sys.stdin if name == "-" else Path(name).open(encoding="utf-8")


def _prompt_lines() -> Iterable[str]:
    while True:
        try:
            yield input("? ")
        except EOFError:
            print()
            return


def _configure_logging(settings: Settings, verbose: bool) -> None:
    """LOG_LEVEL when verbose (and for the bot); otherwise only warnings, so answers stay readable."""
    level = logging.getLevelNamesMapping()[settings.log_level]
    level = level if verbose else max(logging.WARNING, level)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(max(logging.WARNING, level))


if __name__ == "__main__":
    sys.exit(main())
