"""Yes/no questions made from SQuAD's wh-questions by English grammar, for the evidence model and its calibration.

"Where was the assembly held?" with the answer "Seoul" becomes "Was the assembly held in Seoul?" (settled "yes" by
the answer's sentence) and, with another place of the same article, "Was the assembly held in Busan?" (settled "no"
by the same sentence). BoolQ gives a paragraph per question, not the sentence that says no; SQuAD's answer sentence
is that sentence. Made from an unanswerable question (its plausible answer's sentence swaps an entity elsewhere in
the question), the yes/no question is still not settled by that sentence: the pair keeps the distinction.
"""

from __future__ import annotations

import random
import re

from training.squad import normalize

_AUX = r"is|are|was|were|did|does|do|has|have|had|will|would|can|could"
# (pattern, template, kind): the kind keeps "no" values of the same sort (a place for a place, a year for a year).
_RULES = [
    (re.compile(rf"^(in|on|during|at) (?:what|which) (\w+) ({_AUX}) (.+)$", re.I), "{aux} {rest} {prep} {value}", "in"),
    (re.compile(rf"^(when) ({_AUX}) (.+)$", re.I), "{aux} {rest} in {value}", "when"),
    (re.compile(rf"^(where) ({_AUX}) (.+)$", re.I), "{aux} {rest} in {value}", "where"),
    (re.compile(rf"^(how many) (\w+) ({_AUX}) (.+)$", re.I), "{aux} {rest} {value} {noun}", "how many"),
    (re.compile(rf"^(who|whom) ({_AUX}) (.+)$", re.I), "{aux} {rest} {value}", "who"),
    (re.compile(rf"^(what|which) ({_AUX}) (.+)$", re.I), "{aux} {rest} {value}", "what"),
    (re.compile(r"^(who) (\w+(?:ed|s)) (.+)$", re.I), "was it {value} who {verb} {rest}", "who"),
]
_SUBJECT = re.compile(r"^(\w+ed|been|being|not|there)\b", re.I)
_PREPOSITION = re.compile(r"^(in|on|at|during|by|from|since|around|about)\b", re.I)


def convert(question: str, value: str) -> tuple[str, str] | None:
    """(the yes/no question asking whether `value` answers `question`, the sort of value), or None when no rule
    of the grammar above applies."""
    text = question.strip().rstrip("?").strip()
    for pattern, template, sort in _RULES:
        match = pattern.match(text)
        if not match:
            continue
        parts = _parts(sort, template, match.groups())
        if _SUBJECT.match(parts.get("rest", "")) and sort in ("who", "what", "how many"):
            return None  # "Who was elected …?", "How many homes had been rebuilt?": the value is the subject
        value = value.strip().rstrip(".")
        if _PREPOSITION.match(value):
            template = template.replace("in {value}", "{value}").replace("{prep} {value}", "{value}")
        if sort == "how many" and parts["noun"].lower() in value.lower():
            parts["noun"] = ""
        asked = " ".join(template.format(value=value, **parts).split())
        return asked[:1].upper() + asked[1:] + "?", sort
    return None


def made_from(
    question: str, answers: list[dict], pool: dict[str, list[str]], rng: random.Random
) -> tuple[str, bool] | None:
    """The yes/no question made from a SQuAD question and its (or its plausible) answers: about the answer, or half
    the time about another value of its sort from `pool`; with whether it asks about the answer itself. None when
    there is no answer or no rule applies."""
    if not answers:
        return None
    converted = convert(question, answers[0]["text"])
    if converted is None:
        return None
    other = other_value(answers[0]["text"], converted[1], pool, rng) if rng.random() < 0.5 else None
    return (convert(question, other)[0], False) if other else (converted[0], True)  # type: ignore[index]


def _parts(sort: str, template: str, groups: tuple[str, ...]) -> dict[str, str]:
    if sort == "in":
        prep, _, aux, rest = groups
        return {"prep": prep.lower(), "aux": aux, "rest": rest}
    if sort == "how many":
        _, noun, aux, rest = groups
        return {"noun": noun, "aux": aux, "rest": rest}
    if "verb" in template:
        _, verb, rest = groups
        return {"verb": verb, "rest": rest}
    _, aux, rest = groups
    return {"aux": aux, "rest": rest}


def other_value(value: str, sort: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """Another answer of the same sort from the article (`pool`: sort -> answers), one that is not `value`."""
    own = normalize(value)
    choices = [v for v in pool.get(sort, []) if normalize(v) and normalize(v) not in own and own not in normalize(v)]
    return rng.choice(choices) if choices else None


def value_pool(article: dict) -> dict[str, list[str]]:
    """An article's answers by the sort of question they answer."""
    pool: dict[str, list[str]] = {}
    for paragraph in article["paragraphs"]:
        for qa in paragraph["qas"]:
            answers = qa["answers"] or qa.get("plausible_answers") or []
            converted = convert(qa["question"], answers[0]["text"]) if answers else None
            if converted and len(answers[0]["text"].split()) <= 6:
                pool.setdefault(converted[1], []).append(answers[0]["text"])
    return pool
