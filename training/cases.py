"""What a right answer is, for the project's question sets: one rule for the tests and the benchmarks."""

from __future__ import annotations

from bot.replies import Answer


def is_right(case: dict, answer: Answer) -> bool:
    """An answerable case's `fact` (or one of a list of facts) quoted, case aside, with one of its `paragraphs`
    cited first; a case the article leaves open (no `fact`, or `abstain: true`) refused."""
    if case.get("abstain") or "fact" not in case:
        return answer.abstained
    facts = case["fact"] if isinstance(case["fact"], list) else [case["fact"]]
    cited = answer.citations[0].paragraph if answer.citations else None
    return not answer.abstained and any(f.lower() in answer.text.lower() for f in facts) and cited in case["paragraphs"]
