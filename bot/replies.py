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
class Answer:
    """What the bot says: the short answer, the quoted sentences with `[n]` markers and the citations they point
    to, or an abstention with the closest passages as "see also". `confidence` is the calibrated probability
    that the answer is right."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    short_answer: str | None = None
    see_also: list[Citation] = field(default_factory=list)
    confidence: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)

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
        return asdict(self) | {"answer_type": self.answer_type}


def document_line(doc: DocumentInfo) -> str:
    """One line on a document: "BusinessKorea · 12 passages · wego.txt · added 2026-11-25 from a URL"."""
    source = f"{doc.source} · " if doc.source else ""
    how = {"url": " from a URL", "file": " from a file"}.get(doc.origin or "", "")
    added = f" · added {doc.added[:10]}{how}" if doc.added else ""
    return f"{source}{doc.passages} passages · {doc.id}{added}"
