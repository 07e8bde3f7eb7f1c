"""What kind of answer a question asks for, read from English grammar alone, and the question's words and numbers
that the quoted evidence should hold.

- "yes_no": it opens with an auxiliary verb ("Does the museum open on Mondays?"): the answer is the sentence that
  settles it, not a span of it.
- "describe": why, how (but not how many/much/long/often …), describe, explain, "what about": the answer is a clause.
- "list": which/what followed by a plural noun ("Which risks does the report list?") or by are/were ("What are
  the breaking changes?"): the answer is a list.
- "keyword": a bare keyword or noun phrase ("membership fees"), read as "what does the article say about it?".
- "span": everything else (who, what, when, where, which …): a short span answers it.
Only "span" questions get a short answer; the others are answered with the sentences that settle them.
"""

from __future__ import annotations

import re
from typing import Literal

from index.lexical import tokenize

Kind = Literal["span", "yes_no", "describe", "list", "keyword"]

_AUXILIARY = (
    r"is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must|"
    r"isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|won't|hasn't|haven't"
)
_YES_NO = re.compile(rf"^\s*({_AUXILIARY})\b", re.I)
_QUANTITY = r"many|much|long|often|old|far|big|large|tall|soon|early|late|high|fast|frequently|far"
_DESCRIBE = re.compile(
    rf"^\s*(why\b|how\b(?!\s+({_QUANTITY})\b)|describe\b|explain\b|tell me\b|what about\b|what happened\b)", re.I
)
_NOT_PLURAL = {"is", "was", "has", "does", "its", "this", "his", "hers", "ours", "yours", "theirs", "whose", "as", "us"}
_LIST = re.compile(r"^\s*(which|what)\s+(\w+?s)\b", re.I)
_PLURAL_COPULA = re.compile(r"^\s*(which|what)\s+(are|were)\b", re.I)
_ASKING = re.compile(rf"^\s*(who|whom|whose|what|which|where|when|why|how|{_AUXILIARY}|name|list|tell)\b", re.I)
_KEYWORD_WORDS = 5

_ORDINALS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
]
_CARDINALS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_EDITION = re.compile(r"\b(\d+(?:\.\d+)+)\b|\b(\d+)(?:st|nd|rd|th)\b|\b(" + "|".join(_ORDINALS[2:]) + r")\b", re.I)
_PERIOD = r"(?:year|season|month|week|summer|winter|spring|autumn|term)(?:'s)?"
# The occasion a text refers to: a question asks about one, a sentence may state another.
_OCCASIONS = {
    "next": re.compile(
        rf"\b(?:the|its|their|this|our|his|her) next\b|\bnext {_PERIOD}|\bupcoming\b|\bcoming {_PERIOD}", re.I
    ),
    "this": re.compile(rf"\bthis {_PERIOD}|\bthe current\b|\bthis time\b", re.I),
    "last": re.compile(rf"\blast {_PERIOD}|\bprevious\b|\bthe year before\b", re.I),
}
_FUTURE = re.compile(r"\b(?:next|upcoming|following|future|subsequent|again|later)\b", re.I)
_NUMBER = re.compile(r"\b(\d+)(?:st|nd|rd|th)?\b|\b(" + "|".join(_ORDINALS + _CARDINALS) + r")\b", re.I)


def kind(question: str) -> Kind:
    """The kind of answer the question asks for (see the module's docstring)."""
    if _YES_NO.match(question):
        return "yes_no"
    if _DESCRIBE.match(question):
        return "describe"
    plural = _LIST.match(question)
    if plural and plural.group(2).lower() not in _NOT_PLURAL and not plural.group(2).lower().endswith("ss"):
        return "list"
    if _PLURAL_COPULA.match(question):
        return "list"
    if "?" not in question and not _ASKING.match(question) and len(question.split()) <= _KEYWORD_WORDS:
        return "keyword"
    return "span"


def as_question(question: str) -> str:
    """A bare keyword read as the question it stands for; any other question as it is."""
    return f"What does the article say about {question.strip()}?" if kind(question) == "keyword" else question


def coverage(question: str, evidence: str) -> float:
    """The share of the question's content words (lemmatised and stemmed) that the evidence holds."""
    asked = set(tokenize(question))
    return len(asked & set(tokenize(evidence))) / len(asked) if asked else 1.0


def unmatched_numbers(question: str, evidence: str) -> float:
    """How many of the question's numbers and ordinals ("5th", "fifth", "2029") the evidence does not state: a
    question about the fifth assembly is not answered by a sentence about the sixth. (A question's cardinal
    words are left out: "which one", "the two of them" seldom name a number the answer must hold.)"""
    return float(len(numbers(question, cardinals=False) - numbers(evidence)))


def other_edition(question: str, evidence: str) -> bool:
    """Whether the question names an edition, an ordinal or a version ("the 5th assembly", "the fifth", "4.3")
    that the evidence does not state: a sentence about the 6th assembly or version 4.2 does not answer it. ("first"
    and "second" are left out: "the first known", "the second largest" seldom number an edition.)"""
    stated = editions(evidence) | {str(n) for n in numbers(evidence)}
    return bool(editions(question) - stated)


def other_occasion(question: str, evidence: str) -> bool:
    """Whether the question asks about one occasion (the next, this year's, last season's …) and the evidence is
    about another: a sentence about this year's venue, even one that "will be held", does not say where the next
    one will be, nor where last year's was. A question about the next occasion needs evidence that names a later
    one (next, following, again …); one about this or the last occasion is answered unless the evidence states a
    different one."""
    asked = occasion(question)
    if asked == "next":
        return not _FUTURE.search(evidence)
    stated = {name for name, pattern in _OCCASIONS.items() if pattern.search(evidence)}
    return asked is not None and bool(stated) and asked not in stated


def occasion(text: str) -> str | None:
    """The occasion a question asks about ("next", "this", "last"), if it names one."""
    return next((name for name, pattern in _OCCASIONS.items() if pattern.search(text)), None)


def editions(text: str) -> set[str]:
    """The versions ("4.3") and ordinals ("5th", "fifth" → "5") a text names."""
    out = set()
    for version, digits, word in _EDITION.findall(text):
        out.add(version or digits or str(_ORDINALS.index(word.lower()) + 1))
    return out


def numbers(text: str, cardinals: bool = True) -> set[int]:
    """The numbers a text states, in digits or (up to twelve) in words: ordinals, and cardinals if asked."""
    out = set()
    for digits, word in _NUMBER.findall(text):
        word = word.lower()
        if digits:
            out.add(int(digits))
        elif word in _ORDINALS:
            out.add(_ORDINALS.index(word) + 1)
        elif cardinals:
            out.add(_CARDINALS.index(word) + 1)
    return out


def same_answer(a: str, b: str) -> bool:
    """Whether two short answers say the same thing: one's words (case, punctuation and articles aside) are
    among the other's."""
    words_a, words_b = (set(re.findall(r"\w+", t.lower())) - {"a", "an", "the"} for t in (a, b))
    return words_a <= words_b or words_b <= words_a
