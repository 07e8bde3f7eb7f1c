"""The development set through the engine, per question type: three short articles of different genres
(tests/devset/: a club newsletter, a software release note, a council's minutes) with questions people ask —
spans, yes/no, describe, lists, numbers in words, bare keywords, pronoun references, follow-ups, and on-topic
questions the article leaves open with a type-matching decoy in the text.

An answerable question is answered right when the quote holds its fact and its paragraph is cited first;
wrong when the bot answers otherwise; refused when it abstains. An unanswerable one is right when refused. The
rules and the threshold were tuned with this set in view: these are development figures, not held-out ones.
Usage:

    python benchmarks/devset.py [--out benchmarks/results/devset.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.engine import Engine
from bot.history import Turn
from bot.replies import Answer
from bot.settings import load_settings
from index.embedder import Embedder
from training.cases import is_right

ROOT = Path(__file__).resolve().parents[1]
DEVSET = ROOT / "tests" / "devset"
RESULTS = Path(__file__).resolve().parent / "results" / "devset.json"


def load_sets() -> dict[str, dict]:
    """Each article's question set, by name."""
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(DEVSET.glob("*.yaml"))}


def ask(engine: Engine, case: dict) -> Answer:
    """The case's answer; a follow-up is asked after its `after` question, as one conversation."""
    history = [Turn.of(engine.ask(case["after"]))] if "after" in case else []
    return engine.ask(case["question"], history)


def outcome(case: dict, answer: Answer) -> str:
    """ "right", "wrong" (answered, but not with the fact and paragraph, or answered where the article is silent)
    or "refused" (abstained on an answerable question)."""
    if is_right(case, answer):
        return "right"
    return "refused" if answer.abstained else "wrong"


def run(embedder: Embedder) -> dict:
    """Per type: questions, right, wrong, refused; and each question's outcome."""
    tally: dict[str, dict[str, int]] = defaultdict(lambda: {"questions": 0, "right": 0, "wrong": 0, "refused": 0})
    details = []
    for name, data in load_sets().items():
        corpus = DEVSET / Path(data["article"]).parent
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(corpus_dir=corpus, index_dir=Path(tmp) / "index", _env_file=None)
            engine = Engine(settings, embedder)
            for case in data["questions"]:
                answer = ask(engine, case)
                result = outcome(case, answer)
                for key in (case["type"], "all"):
                    tally[key]["questions"] += 1
                    tally[key][result] += 1
                details.append(
                    {"set": name, "type": case["type"], "question": case["question"], "outcome": result}
                    | {"answer_type": answer.answer_type, "confidence": answer.confidence}
                )
    return {"per_type": dict(tally), "questions": details}


def print_table(per_type: dict[str, dict[str, int]]) -> None:
    print("| type | questions | right | wrong | refused (answerable) |\n|---|---|---|---|---|")
    for kind, t in per_type.items():
        n = t["questions"]
        print(f"| {kind} | {n} | {t['right'] / n:.2f} | {t['wrong'] / n:.2f} | {t['refused'] / n:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(Embedder().load())
    order = [*sorted(k for k in results["per_type"] if k != "all"), "all"]
    results["per_type"] = {k: results["per_type"][k] for k in order}
    print_table(results["per_type"])
    for row in results["questions"]:
        if row["outcome"] != "right":
            print(f"  {row['outcome']:8} {row['type']:18} {row['confidence']:.3f} {row['set']}: {row['question']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
