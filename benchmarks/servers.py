"""Many servers in one process: 1,000 servers with five generated documents each, asked from random servers.

Each server's documents (about 2,000 words each) sit on top of the shared base (the bundled article); questions go
through `Engine.ask(question, server=id)`, as the bot asks them.

Documents (seeded, so every run writes the same text): each server is a club or society of its own (a sailing club,
a choir, an allotment society...), with a name no other server has. Its five documents (history, annual report,
events, the clubhouse, membership) each open with a paragraph of facts only that server holds: its founder, the
chair elected at its AGM, where its main event will be held, the street of its clubhouse, how many members it has.
One question per document asks for that fact ("Who founded the Kestrel Vale Sailing Club?"); it is answered right
when the reply contains the fact and cites, first, the server's own document and paragraph that state it. The rest
of each document is ~20 paragraphs of club life (people, dates, places, sums) drawn from sentence patterns.

Builds: every passage and sentence is embedded, about 15 s per server on 2 cores, so 1,000 servers built from
scratch would take over 4 hours. `--built` servers (25 by default) are built for real, as an admin would: five
`library.manager(id).add_file(name, bytes)`, one per document, each extracting the file and rebuilding the server's
index; their time is the build time per server. Every other server is derived from one of them (server i from
built server i mod --built): the same body paragraphs under its own opening paragraphs, written into its own corpus
folder and indexed by the engine's own `index.build.build` with a copy of that built server's embedding cache, so
only its own opening paragraphs are embedded. Each derived server thus has its own corpus, facts and index, of the
same size as a built one and identical to what a build from scratch would give (the cache holds exactly the model's
vectors of those texts); only its build time is not a from-scratch one, and is reported apart.

Then two fresh `Engine`s sharing the models (the default INDEX_MEMORY_MB, 1,024, unless --memory-mb): the
many-server engine, and a single-server one that is only ever asked the first server's questions.
- alone: the single-server engine, the first server's five questions --single-rounds times over, before any other
  server's index is open in the process;
- opening: the many-server engine, one question from every server in a shuffled order (each server's first; the
  least recently used indexes close as the open ones pass the budget);
- random: --questions questions from servers drawn at random, "warm" when the server's index is open, "after
  eviction" when it was opened before and closed since; after each, one of the single server's questions to the
  single-server engine, so that both are timed on the same machine at the same moments (this machine is shared).
For each question: latency of `Engine.ask`, the process's RSS, the open indexes and their footprint, the machine's
load average, and whether it was answered right. Reported: p50/p95 per kind against the single-server questions
of the random phase (target for warm: ≤ 1.2×), RSS and open indexes under the budget, build time per server.
`--quick` (30 servers, 3 built, short documents, a 1 MB budget so that indexes are evicted) is a smoke run.

Usage: python benchmarks/servers.py [--servers 1000] [--built 25] [--questions 1000] [--single-rounds 20]
       [--words 2000] [--memory-mb 1024] [--seed 0] [--quick] [--out-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import matplotlib
import numpy as np
import psutil

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.engine import Engine
from bot.replies import Answer
from bot.settings import BUNDLED_CORPUS, Settings, load_settings
from index.build import CACHE_DIR, build
from index.extract import Extracted, document_name, to_markdown
from index.library import CORPUS, INDEX, Library

RESULTS = ROOT / "benchmarks" / "results"
SERVERS, BUILT, QUESTIONS, SINGLE_ROUNDS, WORDS = 1000, 25, 1000, 20, 2000
QUICK = {"servers": 30, "built": 3, "questions": 30, "single_rounds": 2, "words": 250, "memory_mb": 1}
FIRST_ID = 900_000_000_000_000_000  # server ids look like Discord's (snowflakes)
MB = 2**20

# ---------------------------------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Kind:
    """A kind of club: what it is called, where it meets, what it does, what it owns and holds."""

    suffix: str  # "Sailing Club": a server's name is a place and this
    noun: str  # how the documents call it: "the club"
    home: str  # where it meets
    activity: str  # what members do, after "interested in"
    session: str  # a regular meeting
    event: str  # its main yearly event, after the place name
    contest: str  # a running competition
    things: tuple[str, ...]  # what it owns (plural)
    members: str  # what members are called


KINDS = (
    Kind("Sailing Club", "club", "clubhouse", "sailing", "race evening", "Regatta", "summer series",
         ("dinghies", "safety boats", "trailers", "lifejackets"), "sailors"),
    Kind("Rowing Club", "club", "boathouse", "rowing", "morning outing", "Head of the River", "winter league",
         ("sculls", "coxed fours", "rowing machines", "oars"), "rowers"),
    Kind("Chess Club", "club", "club room", "chess", "club night", "Open", "county league",
         ("clocks", "boards", "sets", "score books"), "players"),
    Kind("Community Choir", "choir", "rehearsal hall", "singing", "rehearsal", "Spring Concert", "festival season",
         ("music stands", "scores", "risers", "folders"), "singers"),
    Kind("Cycling Club", "club", "club hut", "cycling", "club run", "Sportive", "time-trial series",
         ("tandems", "track bikes", "tool kits", "turbo trainers"), "riders"),
    Kind("Allotment Society", "society", "trading hut", "growing vegetables", "work party", "Summer Show",
         "produce competition", ("greenhouses", "water butts", "wheelbarrows", "polytunnels"), "plot holders"),
    Kind("Players", "company", "little theatre", "amateur drama", "rehearsal", "Drama Festival", "one-act season",
         ("costumes", "stage lights", "flats", "props"), "actors"),
    Kind("Walking Club", "club", "meeting room", "walking", "Sunday walk", "Challenge Walk", "summit challenge",
         ("maps", "compasses", "first-aid kits", "radios"), "walkers"),
)  # fmt: skip


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Ada Agnes Alan Alice Amir Anna Arthur Aziz Beatrice Bernard Bridget Callum Carys Cedric Clara Colin Dafydd "
    "Daisy Declan Dilys Edgar Edith Elena Eoin Esther Felix Fiona Frances Gareth Gemma Gideon Greta Hamish Harriet "
    "Helga Hugo Ines Isla Ivor Jasper Joan Jonah Juno Kamal Kirsty Laszlo Leah Lionel Lorna Magnus Maeve Malcolm "
    "Marta Miles Mirela Nadia Neil Nia Olwen Oscar Pavel Peggy Quentin Rhona Rohan Rosa Rufus Sabine Silas Sunita "
    "Tamsin Tobias Ursula Vera Walter Wren Yusuf Zara"
)
SURNAMES = _words(  # people in a server's own opening paragraphs: founders, chairs
    "Abernethy Ackroyd Ainsworth Alderton Ashdown Balfour Barraclough Beckwith Blackwood Bramley Brightwell "
    "Carrick Chadwick Clegg Cornforth Dalrymple Darnell Dewhurst Drummond Eastwood Elphick Fairbairn Fenwick "
    "Garside Gilchrist Greenhalgh Hargreaves Haworth Holroyd Ingleby Jephcott Kettlewell Kinnear Lockwood "
    "Lumsden Macaulay Mallinson Marwick Micklethwaite Nettleton Oldroyd Ormerod Pickersgill Prendergast Quarmby "
    "Rawcliffe Renshaw Ropner Sandiford Satterthwaite Shackleton Sowerby Stainthorpe Sutcliffe Tattersall "
    "Thistlethwaite Trelawney Uttley Vavasour Wadsworth Whitworth Wilberforce Winstanley Wolstenholme Yarwood"
)
BODY_SURNAMES = _words(  # everyone else in the documents: never a founder's or a chair's surname
    "Adams Baker Bell Brown Carter Clark Cole Cook Davies Dixon Evans Fisher Ford Gray Hall Hill Hughes Hunt "
    "Jones Kelly King Lewis Marsh Moore Morgan Nash Owen Palmer Parry Reed Rees Shaw Stone Taylor Walsh Ward Webb "
    "West Wood Young"
)
PLACES = _words(
    "Ardley Ashcombe Barrowden Blackmere Bramford Brindle Carrow Chalkley Cinderford Coldwater Corran Dunmere "
    "Eastholme Elmsworth Fallowfield Farrowby Foxhollow Galloway Glenmoor Greystone Hadley Harrowgate Hollins "
    "Kestrel Kilbride Larkspur Linnet Lowther Marden Marlow Middlemoor Millbeck Netherby Northam Oakhurst Otterburn "
    "Pendle Penrith Ravensworth Redbrook Rookhope Rushmere Saltburn Sandholme Sedgefield Shelford Silverdale "
    "Skelton Stanmore Stonebridge Swaledale Thornbury Torrin Ulverby Wakering Westerdale Whinfell Wildmoor "
    "Willowby Wrayton Yarrowby"
)
PLACE_ENDS = ("", " Bay", " Bridge", " Green", " Vale", " Heath", " Harbour", " Cross", " Hill", " Valley", " Moor")
STREETS = ("Lane", "Road", "Street", "Row", "Terrace", "Walk", "Way")
STREET_WORDS = _words(
    "Anchor Beacon Bellfield Brewery Chapel Cooper Dyer Ferry Foundry Garden Granary Heron Kiln Lantern Lock "
    "Malthouse Mariner Mill Orchard Pinfold Quarry Rope Saddler Tannery Tithe Tower Weaver Wharf Willow"
)
VENUE_WORDS = ("Park", "Meadow", "Common", "Showground", "Fields", "Green", "Reservoir", "Lido")
PROFESSIONS = ("schoolteacher", "retired engineer", "nurse", "postman", "solicitor", "farmer", "baker", "librarian")
MONTHS = _words("January February March April May June July August September October November December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ORDINALS = ("second", "third", "fourth", "fifth", "sixth", "seventh", "tenth", "twelfth", "fifteenth")
ROLES = ("treasurer", "secretary", "safety officer", "welfare officer", "fixtures secretary", "social secretary")
TRUSTS = ("Coastal Trust", "Community Fund", "Lottery Fund", "Rotary Club", "Civic Society", "County Council")
CHARITIES = ("lifeboat station", "hospice", "food bank", "air ambulance", "children's ward", "mountain rescue team")

# {x} slots: see Filler. Each pattern is one sentence; a body paragraph is four to six of them.
PATTERNS = (
    "On {date}, {person} led a {session} for {small} {members}, the largest turnout since {year}.",
    "The {noun}'s treasurer, {person}, reported that income rose to £{money}, up from £{money2} the year before.",
    "{person} joined the {noun} in {year} and has served as {role} for {small} years.",
    "A grant of £{money} from the {place} {trust} paid for new {thing}.",
    "The committee agreed on {date} to raise the junior fee to £{fee} a year.",
    "Volunteers spent {small} weekends repairing the roof of the {home}, finishing on {date}.",
    "{person} and {person2} organised a trip to {place} in {month}, where the group met members of a {noun} there.",
    "The {home} is open every day except {weekday}, and guests are welcome when a member signs them in.",
    "Thanks to {person}, the {noun}'s newsletter now goes out {often}.",
    "In {year}, the {noun} bought its first {thing} for £{money}.",
    "{big} people came to the open day on {date}, and {small} of them joined on the spot.",
    "{person}, a member since {year}, won the {place} Trophy for the {ordinal} time.",
    "The {contest} ended on {date} with {person} in first place and {person2} second.",
    "The {noun} raised £{money} for the {charity} at its {month} quiz night.",
    "Parking at the {home} is limited to {small} cars, so {members} are asked to share lifts.",
    "{person} stepped down as {role} in {year} after {small} years, and {person2} took over.",
    "The archive, kept by {person}, holds photographs from as far back as {year}.",
    "Insuring the {noun}'s {thing} now costs £{money} a year, {small} per cent more than last year.",
    "A first-aid course for coaches and helpers was held on {date}, run by {person}.",
    "Beginners' sessions start on the first {weekday} of {month} and run for {small} weeks.",
    "In {month} {year}, a storm damaged the {home}, and repairs cost £{money}.",
    "{person} represented the {noun} at the county championships in {place}, finishing {ordinal}.",
    "The social committee, led by {person}, plans a barbecue on {date} and a ceilidh in {month}.",
    "Members voted by {big} to {small} to open the {home} on {weekday} evenings as well.",
    "The {noun} lent its {thing} to the school in {place} for a week in {month}.",
    "{person} wrote to the council on {date} asking for a safer crossing outside the {home}.",
    "A new kitchen was fitted in the {home} in {year} at a cost of £{money}, most of it raised by {members}.",
    "Every {weekday}, {person} opens the {home} at seven and puts the kettle on.",
    "The {noun}'s website, rebuilt by {person} last winter, had {big} visitors in {month}.",
    "{person2} has kept the {noun}'s {thing} in working order for {small} years without being asked twice.",
    "The junior section grew to {big} {members} after a taster day in {place} on {date}.",
    "When the old {home} flooded in {year}, {members} met in the back room of the {place} Arms for a season.",
    "Subscriptions are due on 1 {month}, and {person} sends a reminder a fortnight before.",
    "The {noun} hosted a visiting group from {place} on {date} and lost the friendly match by a narrow margin.",
    "A bench in memory of {person}, who died in {year}, now stands outside the {home}.",
    "Sponsorship from a builder's merchant in {place} covers the cost of the {thing} until {year2}.",
    "{person} gave a talk on the history of {activity} in {place} on {date}, and {big} people came.",
    "The {contest} returns in {month}, with {small} teams entered so far.",
    "The accounts for {year} showed a surplus of £{money}, mostly from the bar and the {month} raffle.",
    "{person2} took over the running of the {session} in {month} and moved it to {weekday} evenings.",
    "The {noun} now owns {small} {thing}, {small2} of them bought second-hand from a {noun} in {place}.",
    "A photograph of the founding members, found by {person} in {year}, hangs by the door of the {home}.",
    "Lost property is kept in the {home} for {small} weeks and then given to the {charity}.",
    "On {date}, the {noun} welcomed its {ordinal} exchange visit from {place}.",
)
OFTEN = ("every month", "twice a year", "three times a year", "every quarter", "every other month", "each season")

# ---------------------------------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Known:
    """A question whose answer only one server's documents hold, and where."""

    question: str
    answer: str
    document: str  # the document id (file name) that states it
    paragraph: int


@dataclass(frozen=True)
class Document:
    name: str  # the corpus file name, as `add_file` names it
    title: str
    body: str


@dataclass(frozen=True)
class Server:
    id: int
    name: str
    template: int  # the built server whose body paragraphs it shares (itself when built)
    documents: tuple[Document, ...]
    questions: tuple[Known, ...]


class Filler:
    """Values for the patterns' slots, from one seeded generator."""

    def __init__(self, rng: random.Random, kind: Kind) -> None:
        self.rng, self.kind = rng, kind

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(BODY_SURNAMES)}"

    def date(self) -> str:
        return f"{self.rng.randint(1, 28)} {self.rng.choice(MONTHS)}"

    def values(self) -> dict[str, str]:
        r, k = self.rng, self.kind
        year = r.randint(1962, 2023)
        return {
            "date": self.date(),
            "person": self.person(),
            "person2": self.person(),
            "year": str(year),
            "year2": str(year + r.randint(2, 6)),
            "small": str(r.randint(3, 19)),
            "small2": str(r.randint(2, 3)),
            "big": str(r.randint(24, 380)),
            "money": f"{r.randint(4, 95) * 100:,}",
            "money2": f"{r.randint(4, 95) * 100:,}",
            "fee": str(r.randint(2, 9) * 5),
            "month": r.choice(MONTHS),
            "weekday": r.choice(WEEKDAYS),
            "ordinal": r.choice(ORDINALS),
            "role": r.choice(ROLES),
            "place": r.choice(PLACES),
            "trust": r.choice(TRUSTS),
            "charity": r.choice(CHARITIES),
            "often": r.choice(OFTEN),
            "thing": r.choice(k.things),
            "noun": k.noun,
            "home": k.home,
            "session": k.session,
            "contest": k.contest,
            "members": k.members,
            "activity": k.activity,
        }

    def paragraph(self) -> str:
        patterns = self.rng.sample(PATTERNS, self.rng.randint(4, 6))
        text = " ".join(p.format(**self.values()) for p in patterns)
        return text.replace("The the ", "The ")


def body(seed: int, kind: Kind, documents: int, words: int) -> list[list[str]]:
    """A template's body: for each document, paragraphs of club life adding up to about `words` words."""
    filler = Filler(random.Random(f"body-{seed}"), kind)
    out = []
    for _ in range(documents):
        paragraphs: list[str] = []
        while sum(len(p.split()) for p in paragraphs) < words - 70:  # the opening paragraph adds about 70
            paragraphs.append(filler.paragraph())
        out.append(paragraphs)
    return out


class Identities:
    """Each server's own name and facts; its name, founder and chair are no other server's."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"identity-{seed}")
        self.used: set[str] = set()

    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            if (value := make()) not in self.used:
                self.used.add(value)
                return value
        raise RuntimeError("the word lists are too short for this many servers")

    def facts(self, kind: Kind) -> dict[str, str]:
        r = self.rng
        name = self.unique(lambda: f"{r.choice(PLACES)}{r.choice(PLACE_ENDS)} {kind.suffix}")
        town = name.removesuffix(f" {kind.suffix}")
        person = lambda: f"{r.choice(FIRST)} {r.choice(SURNAMES)}"  # noqa: E731
        founder, chair = self.unique(person), self.unique(person)
        return {
            "name": name,
            "town": town,
            "founder": founder,
            "chair": chair,
            "previous": person(),
            "founded": str(r.randint(1890, 1995)),
            "profession": r.choice(PROFESSIONS),
            "venue": f"{r.choice(SURNAMES)} {r.choice(VENUE_WORDS)}",
            "street": f"{r.choice(STREET_WORDS)} {r.choice(STREETS)}",
            "number": str(r.randint(2, 140)),
            "members": str(r.randint(60, 990)),
            "juniors": str(r.randint(8, 55)),
            "fee": str(r.randint(12, 60) * 5),
            "agm": f"{r.randint(1, 28)} {r.choice(MONTHS[:4])}",
            "event_date": f"{r.randint(1, 28)} {r.choice(MONTHS[4:9])}",
            "years": str(r.randint(3, 14)),
            "event": f"{town} {kind.event}",
        }


OPENINGS = (  # (title, opening paragraph, question, the fact's key) per document
    (
        "{name}: a history",
        "The {name} was founded in {founded} by {founder}, a {profession} from {town}, who put a notice in the "
        "local paper asking for anyone interested in {activity}. Eleven people came to the first meeting, held in "
        "the back room of a pub on the high street. {founder}'s notebook from that evening is still kept by the "
        "{noun}, with the names of everyone who paid the first subscription of five shillings.",
        "Who founded the {name}?",
        "founder",
    ),
    (
        "{name}: annual report",
        "At the annual general meeting of the {name} on {agm}, {chair} was elected chair, succeeding {previous}, "
        "who had held the post for {years} years. Speaking after the vote, {chair} thanked the committee "
        "and said that the {noun}'s priority for the coming year would be to bring in younger members "
        "and to keep the subscription as low as it can be.",
        "Who was elected chair of the {name}?",
        "chair",
    ),
    (
        "{name}: events this year",
        "The {event}, the biggest date in the {name}'s calendar, will be held at {venue} on {event_date}. "
        "Entries open a month before and cost £{fee_event} per entrant, and visitors from other clubs are welcome "
        "to take part. Helpers are needed on the day for car parking, teas and the results board.",
        "Where will the {event} be held?",
        "venue",
    ),
    (
        "{name}: the {home}",
        "The {name}'s {home} stands at {number} {street} in {town}, a short walk from the railway station. It was "
        "built by volunteers over two summers and opened with a party for everyone who had carried a brick. "
        "Members can borrow a key from the secretary, and the building can be hired for birthdays and meetings.",
        "Which street is the {name}'s {home} on?",
        "street",
    ),
    (
        "{name}: membership",
        "The {name} has {members} members this year, {juniors} of them juniors under eighteen. Full adult "
        "membership costs £{fee} a year, and anyone who joins after the first of September pays half. Family "
        "membership covers two adults and all of their children living at the same address.",
        "How many members does the {name} have?",
        "members",
    ),
)


def make_server(index: int, template: int, kind: Kind, paragraphs: list[list[str]], facts: dict[str, str]) -> Server:
    """A server's five documents: its own opening paragraph, then the template's body; and its five questions."""
    values = facts | {
        "noun": kind.noun,
        "home": kind.home,
        "activity": kind.activity,
        "fee_event": str(int(facts["fee"]) // 10),
    }
    documents, questions = [], []
    for (title, opening, question, key), rest in zip(OPENINGS, paragraphs, strict=True):
        title = title.format(**values)
        text = "\n\n".join([opening.format(**values), *rest])
        name = document_name(Extracted(title, text, {}))
        documents.append(Document(name, title, text))
        questions.append(Known(question.format(**values), facts[key], name, 1))
    return Server(FIRST_ID + index, facts["name"], template, tuple(documents), tuple(questions))


def generate(servers: int, built: int, words: int, seed: int = 0) -> list[Server]:
    """`servers` servers; the first `built` have bodies of their own, server i after them shares server
    i mod `built`'s body (and kind) under opening paragraphs of its own."""
    kinds = [KINDS[(seed + t) % len(KINDS)] for t in range(built)]
    bodies = [body(seed * 10_000 + t, kinds[t], len(OPENINGS), words) for t in range(built)]
    identities = Identities(seed)
    out = []
    for i in range(servers):
        template = i % built
        out.append(make_server(i, template, kinds[template], bodies[template], identities.facts(kinds[template])))
    return out


def markdown(document: Document) -> bytes:
    """The document as it is uploaded: Markdown with its title in front matter."""
    return f"---\ntitle: {json.dumps(document.title)}\nsource: generated\n---\n\n{document.body}\n".encode()


# ---------------------------------------------------------------------------------------------------- building


def build_from_scratch(library: Library, server: Server) -> dict:
    """Add the server's documents one by one, as an admin would with `/add file:`; seconds per document and in all."""
    manager = library.manager(server.id)
    seconds = []
    for document in server.documents:
        started = time.perf_counter()
        change = manager.add_file(document.name, markdown(document))
        seconds.append(time.perf_counter() - started)
        assert change.document.id == document.name, (change.document.id, document.name)
    store = manager.store
    assert store is not None
    return {
        "server": server.id,
        "seconds": sum(seconds),
        "add_seconds": seconds,
        "passages": len(store.passages),
        "sentences": len(store.sentences),
        "footprint_mb": manager.footprint / MB,
    }


def derive(library: Library, server: Server) -> dict:
    """Write the server's corpus as `add_file` would, seed its index folder with its template's embedding cache and
    build it with the engine's own build (only its own opening paragraphs get embedded)."""
    folder = library.servers_dir / str(server.id)
    template = library.servers_dir / str(FIRST_ID + server.template)
    corpus = folder / CORPUS
    corpus.mkdir(parents=True)
    added = datetime.now(UTC).isoformat(timespec="seconds")
    for document in server.documents:
        extracted = Extracted(document.title, document.body, {"source": "generated"})
        (corpus / document.name).write_text(to_markdown(extracted, "file", added), encoding="utf-8")
    shutil.copytree(template / INDEX / CACHE_DIR, folder / INDEX / CACHE_DIR)
    config = replace(library.base.config, corpus_dir=corpus, index_dir=folder / INDEX)
    report = build(config, library.embedder)
    return {"server": server.id, "seconds": report.seconds, "embedded": report.embedded}


def build_servers(library: Library, servers: Sequence[Server], built: int) -> tuple[list[dict], list[dict]]:
    """The first `built` servers from scratch, the rest derived; a row for each."""
    scratch, derived = [], []
    for number, server in enumerate(servers, 1):
        if number <= built:
            scratch.append(build_from_scratch(library, server) | {"load": os.getloadavg()[0]})
            print(f"built {number}/{built}: {scratch[-1]['seconds']:.1f} s", flush=True)
        else:
            derived.append(derive(library, server) | {"load": os.getloadavg()[0]})
            if number % 100 == 0:
                print(f"derived {number - built}/{len(servers) - built}", flush=True)
    return scratch, derived


# ---------------------------------------------------------------------------------------------------- asking


@dataclass(frozen=True)
class Asked:
    phase: str
    kind: str  # single, first, warm, evicted
    server: int
    ms: float
    right: bool
    abstained: bool
    rss_mb: float
    open: int
    open_mb: float
    load: float  # the machine's 1-minute load average


def is_right(known: Known, answer: Answer) -> bool:
    """The fact in the reply, and the server's own document and paragraph that state it cited first."""
    reply = f"{answer.short_answer or ''} {answer.text}".lower()
    first = answer.citations[0] if answer.citations else None
    cited = first is not None and (first.document, first.paragraph) == (known.document, known.paragraph)
    return not answer.abstained and known.answer.lower() in reply and cited


class Asker:
    """Asks through the many-server engine, or through the single-server one beside it, and records every question;
    tells warm, first and after-eviction questions apart."""

    def __init__(self, engine: Engine, alone: Engine, single: Server) -> None:
        self.engine = engine  # every server
        self.alone, self.single = alone, single  # one server only: the single-server run
        self.opened: set[int] = set()
        self.rows: list[Asked] = []
        self.process = psutil.Process()

    def open_servers(self) -> dict[int, int]:
        """The many-server engine's open server indexes and their footprints (its Library's LRU, read for the
        record)."""
        return {server: m.footprint for server, m in self.engine.library._open.items()}

    def ask(self, phase: str, server: Server, known: Known) -> Asked:
        """Ask the many-server engine, or in the single-server run (phase "alone" or "single") the other one."""
        alone = phase in ("alone", "single")
        kind = phase if alone else "warm" if server.id in self.open_servers() else "first"
        if kind == "first" and server.id in self.opened:
            kind = "evicted"
        started = time.perf_counter()
        answer = (self.alone if alone else self.engine).ask(known.question, server=server.id)
        ms = (time.perf_counter() - started) * 1000
        self.opened |= set() if alone else {server.id}
        after = self.open_servers()
        row = Asked(
            phase,
            kind,
            server.id,
            ms,
            is_right(known, answer),
            answer.abstained,
            self.process.memory_info().rss / MB,
            len(after),
            sum(after.values()) / MB,
            os.getloadavg()[0],
        )
        self.rows.append(row)
        return row


def alone(asker: Asker, rounds: int) -> None:
    """The single server's questions, `rounds` times over, before any other server's index opens (after one
    unrecorded pass that opens its own)."""
    for known in asker.single.questions:
        asker.alone.ask(known.question, server=asker.single.id)
    for _ in range(rounds):
        for known in asker.single.questions:
            asker.ask("alone", asker.single, known)


def opening(asker: Asker, servers: Sequence[Server], rng: random.Random) -> None:
    """One question from every server, in a shuffled order."""
    order = list(servers)
    rng.shuffle(order)
    for number, server in enumerate(order, 1):
        asker.ask("opening", server, rng.choice(server.questions))
        if number % 100 == 0:
            _progress(asker, f"opening {number}/{len(order)}")


def random_questions(asker: Asker, servers: Sequence[Server], count: int, rng: random.Random) -> None:
    """`count` questions, each from a server drawn at random, each followed by one of the single server's
    questions asked of the single-server engine (so that both see the same machine at the same time)."""
    for number in range(1, count + 1):
        server = rng.choice(servers)
        asker.ask("random", server, rng.choice(server.questions))
        asker.ask("single", asker.single, asker.single.questions[number % len(asker.single.questions)])
        if number % 100 == 0:
            _progress(asker, f"random {number}/{count}")


def _progress(asker: Asker, label: str) -> None:
    last = asker.rows[-1]
    print(f"{label}: RSS {last.rss_mb:,.0f} MB, {last.open} indexes open ({last.open_mb:,.0f} MB)", flush=True)


# ---------------------------------------------------------------------------------------------------- the run


def settings_for(work: Path, memory_mb: int) -> Settings:
    """Default settings over temporary folders: the bundled article as the base, servers under `work`."""
    shutil.copytree(BUNDLED_CORPUS, work / "base" / "corpus")
    return load_settings(
        _env_file=None,
        corpus_dir=work / "base" / "corpus",
        index_dir=work / "base" / "index",
        servers_dir=work / "servers",
        index_memory_mb=memory_mb,
        database_url=f"sqlite:///{work / 'log.db'}",
        log_questions=False,
    )


def run(args: argparse.Namespace) -> dict:
    """Generate, build, ask; print the tables, write servers.json and servers.png."""
    started, load_before = time.perf_counter(), os.getloadavg()
    servers = generate(args.servers, args.built, args.words, args.seed)
    with tempfile.TemporaryDirectory(prefix="servers-") as tmp:
        settings = settings_for(Path(tmp), args.memory_mb)
        builder = Engine(settings)
        scratch, derived = build_servers(builder.library, servers, args.built)
        embedder, answerer = builder.embedder, builder.answerer
        del builder  # a fresh Library: no server index open
        engines = [Engine(settings, embedder=embedder, answerer=answerer) for _ in range(2)]  # the models shared
        asker = Asker(*engines, single=servers[0])
        asker.engine.ask(servers[0].questions[0].question)  # the models warm, on the base alone
        rss_ready = asker.process.memory_info().rss / MB
        rng = random.Random(args.seed)
        alone(asker, args.single_rounds)
        opening(asker, servers, rng)
        random_questions(asker, servers, args.questions, rng)
        disk_mb = _folder_bytes(Path(tmp) / "servers") / MB
    results = summarise(args, servers, scratch, derived, asker.rows, rss_ready, disk_mb)
    results["arguments"] = {k: v for k, v in vars(args).items() if k != "out_dir"}
    results["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "servers.json").write_text(to_json(results))
    plot(asker.rows, results, args.out_dir / "servers.png")
    print(tables(results))
    print(f"written {args.out_dir / 'servers.json'} and servers.png in {results['seconds']:,} s")
    return results


def to_json(results: dict) -> str:
    """The results indented, with one line per question."""
    head = json.dumps({k: v for k, v in results.items() if k != "questions"}, indent=2)
    rows = ",\n".join(f"    {json.dumps(row)}" for row in results["questions"])
    return f'{head[:-2]},\n  "questions": [\n{rows}\n  ]\n}}\n'


def summarise(
    args: argparse.Namespace,
    servers: Sequence[Server],
    scratch: list[dict],
    derived: list[dict],
    rows: list[Asked],
    rss_ready: float,
    disk_mb: float,
) -> dict:
    """Every figure of the run, rounded, with each question's row."""
    last = rows[-1]  # the single-server engine's: what the whole process holds at the end
    kinds = {k: [r for r in rows if r.kind == k] for k in LABELS}
    latency = {k: _latency(own) for k, own in kinds.items() if own}
    for row in latency.values():  # against the single-server run alternating with the random phase, and alone
        for base, suffix in (("single", ""), ("alone", "_alone")):
            row.update({f"ratio_{p}{suffix}": round(row[p] / latency[base][p], 3) for p in ("p50_ms", "p95_ms")})
    words = [len(d.body.split()) for s in servers for d in s.documents]
    return {
        "servers": len(servers),
        "built_from_scratch": len(scratch),
        "derived": len(derived),
        "documents_per_server": len(OPENINGS),
        "words_per_document": round(float(np.mean(words))),
        "index_memory_mb": args.memory_mb,
        "build": {
            "from_scratch_s": _stats([r["seconds"] for r in scratch]),
            "add_file_s": _stats([s for r in scratch for s in r["add_seconds"]]),
            "derived_s": _stats([r["seconds"] for r in derived]),
            "derived_texts_embedded": _stats([r["embedded"] for r in derived]),
            "passages_per_server": round(float(np.mean([r["passages"] for r in scratch])), 1),
            "sentences_per_server": round(float(np.mean([r["sentences"] for r in scratch])), 1),
            "footprint_mb_per_server": round(float(np.mean([r["footprint_mb"] for r in scratch])), 3),
            "servers_on_disk_mb": round(disk_mb, 1),
        },
        "memory": {
            "rss_ready_mb": round(rss_ready),
            "rss_end_mb": round(last.rss_mb),
            "rss_peak_mb": round(max(r.rss_mb for r in rows)),  # psutil: a sample after each question
            "open_end": last.open,
            "open_max": max(r.open for r in rows),
            "open_footprint_end_mb": round(last.open_mb, 1),
            "rss_per_open_index_mb": round((last.rss_mb - rss_ready) / max(last.open, 1), 3),
        },
        "latency": latency,
        "load_average": {  # the machine's, 1 minute, averaged over each phase (this run alone makes about 2)
            "built": _mean([r["load"] for r in scratch]),
            "derived": _mean([r["load"] for r in derived]),
            **{p: _mean([r.load for r in rows if r.phase == p]) for p in PHASES},
        },
        "question_columns": ["phase", "kind", "server", "ms", "right", "rss_mb", "open", "load"],
        "questions": [_row(r) for r in rows],
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


def _row(r: Asked) -> list:
    return [r.phase, r.kind, r.server, round(r.ms, 2), r.right, round(r.rss_mb), r.open, round(r.load, 2)]


def _latency(rows: list[Asked]) -> dict:
    p50, p95 = np.percentile([r.ms for r in rows], [50, 95]).tolist()
    right = sum(r.right for r in rows) / len(rows)
    abstained = sum(r.abstained for r in rows) / len(rows)
    return {"n": len(rows), "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "right": round(right, 3)} | {
        "abstained": round(abstained, 3)
    }


def _stats(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p95 = np.percentile(values, [50, 95]).tolist()
    return {"n": len(values), "p50": round(p50, 3), "p95": round(p95, 3), "mean": round(float(np.mean(values)), 3)}


PHASES = ("alone", "opening", "random")
LABELS = {
    "alone": "one server only, before the others open",
    "single": "one server only, alternating with the random questions",
    "warm": "many servers, warm",
    "evicted": "first question after eviction",
    "first": "first question (never opened)",
}


def tables(results: dict) -> str:
    """The latency table, then memory and builds."""
    lines = [
        "| question | n | p50 ms | p95 ms | × single p50 | × single p95 | answered right |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, label in LABELS.items():
        if (row := results["latency"].get(kind)) is not None:
            lines.append(
                f"| {label} | {row['n']:,} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['ratio_p50_ms']:.2f} "
                f"| {row['ratio_p95_ms']:.2f} | {row['right']:.3f} |"
            )
    b, m = results["build"], results["memory"]
    scratch, derived, add = b["from_scratch_s"], b["derived_s"], b["add_file_s"]
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| servers (built from scratch + derived) | {results['servers']:,} ({results['built_from_scratch']} + "
        f"{results['derived']:,}), {results['documents_per_server']} documents × "
        f"{results['words_per_document']:,} words each |",
        f"| build per server from scratch (5 × add_file) | p50 {scratch['p50']:.1f} s, p95 {scratch['p95']:.1f} s, "
        f"mean {scratch['mean']:.1f} s (one add_file: p50 {add['p50']:.1f} s) |",
        *(
            [
                f"| derived server's build (its own openings embedded) | p50 {derived['p50']:.2f} s, mean "
                f"{derived['mean']:.2f} s, {b['derived_texts_embedded']['mean']:.0f} texts embedded |"
            ]
            if derived
            else []
        ),
        f"| a server's index | {b['passages_per_server']:.0f} passages, {b['sentences_per_server']:.0f} sentences, "
        f"{b['footprint_mb_per_server']:.2f} MB of files |",
        f"| RSS: engine and base ready / at the end / peak | {m['rss_ready_mb']:,} / {m['rss_end_mb']:,} / "
        f"{m['rss_peak_mb']:,} MB |",
        f"| server indexes open at the end (INDEX_MEMORY_MB={results['index_memory_mb']:,}) | {m['open_end']:,} of "
        f"{results['servers']:,} ({m['open_footprint_end_mb']:,.0f} MB of files; RSS "
        f"+{m['rss_per_open_index_mb']:.2f} MB per open index) |",
    ]
    return "\n".join(lines)


def plot(rows: list[Asked], results: dict, path: Path) -> None:
    """Left: latency per kind of question (p50, p95 and every question). Right: RSS and open indexes over the run."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.2), width_ratios=(1.2, 1))
    kinds = [k for k in LABELS if k in results["latency"]]
    for x, kind in enumerate(kinds):
        ms = [r.ms for r in rows if r.kind == kind]
        jitter = np.random.default_rng(x).uniform(-0.25, 0.25, len(ms))
        left.scatter(x + jitter, ms, s=4, alpha=0.25, color=f"C{x}")
        row = results["latency"][kind]
        left.hlines([row["p50_ms"], row["p95_ms"]], x - 0.35, x + 0.35, colors="black", linestyles=["-", ":"])
    ticks = [_tick(k, results["latency"][k]) for k in kinds]
    left.set_xticks(range(len(kinds)), ticks, fontsize=8)
    left.set(yscale="log", ylabel="Engine.ask, ms", title="latency per kind of question (— p50, ··· p95)")
    left.grid(True, axis="y", which="both", alpha=0.3)
    number = np.arange(1, len(rows) + 1)
    right.plot(number, [r.rss_mb for r in rows], color="C0", label="RSS")
    right.set(xlabel="question", ylabel="RSS, MB", title=f"{results['servers']:,} servers, "
              f"INDEX_MEMORY_MB={results['index_memory_mb']:,}")  # fmt: skip
    opened = right.twinx()
    opened.plot(number, [r.open for r in rows], color="C1", label="server indexes open")
    opened.set_ylabel("server indexes open")
    for phase, shade in zip(PHASES, (0.0, 0.06, 0.12), strict=True):
        own = [i for i, r in enumerate(rows, 1) if r.phase == phase]
        if own and shade:
            right.axvspan(own[0], own[-1], color="grey", alpha=shade, label=f"{phase} phase")
    handles = right.get_legend_handles_labels()[0] + opened.get_legend_handles_labels()[0]
    right.legend(handles=handles, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tick(kind: str, row: dict) -> str:
    name = textwrap.wrap(LABELS[kind], 16)
    return "\n".join([*name, *[""] * (5 - len(name)), f"p50 {row['p50_ms']:.0f} ms", f"p95 {row['p95_ms']:.0f} ms"])


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=SERVERS, help="servers, each with five documents")
    parser.add_argument("--built", type=int, default=BUILT, help="servers built from scratch (the rest derived)")
    parser.add_argument("--questions", type=int, default=QUESTIONS, help="questions from random servers")
    parser.add_argument("--single-rounds", type=int, default=SINGLE_ROUNDS, help="rounds of the single server alone")
    parser.add_argument("--words", type=int, default=WORDS, help="words per document")
    parser.add_argument("--memory-mb", type=int, default=1024, help="INDEX_MEMORY_MB (the default: 1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items())
    )
    parser.add_argument("--out-dir", type=Path, help=f"where servers.json and servers.png go (default: {RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.out_dir is None:  # a smoke run never overwrites the recorded results
        args.out_dir = Path(tempfile.gettempdir()) / "servers-quick" if args.quick else RESULTS
    if not 1 <= args.built <= args.servers:
        parser.error("--built must be between 1 and --servers")
    return args


def main() -> None:
    run(parse())


if __name__ == "__main__":
    main()
