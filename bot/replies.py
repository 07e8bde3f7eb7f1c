"""What the engine gives the front ends: answers with their citations, and one line per document. Plain
dataclasses that import nothing heavy, so that rendering and logging them does not load the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from index.documents import DocumentInfo

APOLOGY = "Sorry, something went wrong while answering. The error has been logged; please try again later."


@dataclass(frozen=True)
class Citation:
    """A numbered source: which document and paragraph, and the quoted passage."""

    n: int
    document: str
    title: str
    paragraph: int
    text: str
    score: float
    source: str | None = None
    url: str | None = None
    page: int | None = None

    @property
    def place(self) -> str:
        """Where the quote is in its document: "¶4", or "p. 3, ¶12" in a PDF."""
        return f"p. {self.page}, ¶{self.paragraph}" if self.page else f"¶{self.paragraph}"


@dataclass(frozen=True)
class Written:
    """A sentence of a generated answer that passed the citation check: its text, the citations (`n` of the
    answer's citations) it carries, and the similarity to a cited sentence that supported it."""

    text: str
    citations: list[int]
    support: float


@dataclass(frozen=True)
class Struck:
    """A sentence the model wrote that the citation check dropped, and why."""

    text: str
    reason: str


@dataclass(frozen=True)
class Answer:
    """What the bot says: the short answer, the quoted sentences with `[n]` markers and the citations they point
    to, or an abstention with the closest passages as "see also". `confidence` is the calibrated probability
    that the answer is right. A generated answer (`generated`) is made of the model's checked `sentences`;
    `dropped` are those the check removed. `passages` are the passages read, what a generator may cite."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    short_answer: str | None = None
    see_also: list[Citation] = field(default_factory=list)
    confidence: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    generated: bool = False
    sentences: list[Written] = field(default_factory=list)
    dropped: list[Struck] = field(default_factory=list)
    passages: list[Citation] = field(default_factory=list, repr=False)

    @property
    def answer_type(self) -> str:
        """ "span" (a short answer, then the sentence it comes from), "evidence" (the sentences that settle the
        question, with no short answer) or "abstained"."""
        if self.abstained:
            return "abstained"
        return "span" if self.short_answer is not None else "evidence"

    @property
    def latency_ms(self) -> float:
        """The time it took to answer, all steps together."""
        return sum(self.timings_ms.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self) | {"answer_type": self.answer_type}
        del data["passages"]  # what was read, not what is said: the citations hold what the answer uses
        return data


def checked_note(answer: Answer) -> str | None:
    """For a generated answer, one line saying that its sentences were checked and how many were dropped."""
    if not answer.generated:
        return None
    kept, dropped = len(answer.sentences), len(answer.dropped)
    note = f"Written by a language model; {kept} sentence{'s' * (kept != 1)} checked against the sources cited"
    return note + (f", {dropped} dropped as unsupported." if dropped else ".")


def document_line(doc: DocumentInfo) -> str:
    """One line on a document: "BusinessKorea · 12 passages · wego.txt · added 2026-11-25 from a URL"."""
    source = f"{doc.source} · " if doc.source else ""
    how = {"url": " from a URL", "file": " from a file"}.get(doc.origin or "", "")
    added = f" · added {doc.added[:10]}{how}" if doc.added else ""
    return f"{source}{doc.passages} passages · {doc.id}{added}"
