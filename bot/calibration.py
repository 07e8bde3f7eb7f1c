"""The calibrator: a small logistic model that turns a candidate answer's evidence (the reader's and the evidence
model's scores and the retrieval signals) into the probability that the answer is right.

It is fitted by `training/calibrate_reader.py` on data held out of both models' training (SQuAD articles and
BoolQ's calibration part), and ships beside the reader's weights with the abstention threshold chosen there. One
calibrator per answerer: "evidence" (reader and evidence model), "reader" (reader alone), "retrieval" (neither).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CALIBRATION = "calibration.json"
BUNDLED, NONE = "bundled", "none"  # READER_MODEL and EVIDENCE_MODEL: the shipped model, or none at all
BUNDLED_READER_DIR = Path(__file__).parent / "reader_model"
# The evidence each answerer's proposals carry (bot.answer), in the calibrator's column order.
FEATURES = {
    "evidence": (
        "margin",
        "null",
        "sentence",
        "rank",
        "length",
        "evidence",
        "coverage",
        "unmatched",
        "evidence_kind",
        "yes_no",
        "yes_no_coverage",
        "clause",
        "keyword",
        "keyword_coverage",
    ),
    "reader": ("margin", "null", "sentence", "rank", "length"),
    "retrieval": ("dense", "sentence", "rank"),
}

log = logging.getLogger(__name__)


class CalibrationError(Exception):
    """The calibration file is missing or does not fit the configured answerer."""


@dataclass(frozen=True)
class Calibrator:
    """P(answer is right) = sigmoid(bias + weights · standardised features); `threshold` is the default
    MIN_CONFIDENCE, chosen on held-out articles."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities for a (candidates, features) array whose columns follow `features`."""
        z = (rows - np.array(self.mean)) / np.array(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias)))

    def probability(self, values: dict[str, float]) -> float:
        return float(self.probabilities(np.array([[values[f] for f in self.features]]))[0])

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Calibrator:
        return cls(
            tuple(data["features"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["weights"]),
            float(data["bias"]),
            float(data["threshold"]),
        )


def answerer_kind(reader: bool, evidence: bool) -> str:
    """Which calibrator fits an answerer with (or without) a reader and an evidence model."""
    if not reader:
        return "retrieval"
    return "evidence" if evidence else "reader"


def calibrator_for(reader_folder: Path | None, kind: str) -> Calibrator:
    """A custom reader's own calibration when its folder has one, else the bundled one (with a warning for a
    custom reader: its probabilities are then only approximate)."""
    if reader_folder is not None and (reader_folder / CALIBRATION).exists():
        return load_calibrator(reader_folder, kind)
    if reader_folder is not None:
        log.warning(
            "reader %s has no calibration.json: using the bundled reader's calibration; run "
            "`python training/calibrate_reader.py --reader %s` to fit its own",
            reader_folder,
            reader_folder,
        )
    return load_calibrator(BUNDLED_READER_DIR, kind)


def load_calibrator(folder: Path, kind: str) -> Calibrator:
    """The calibrator of `kind` ("reader" or "retrieval") stored in `folder`."""
    path = folder / CALIBRATION
    try:
        return Calibrator.from_json(json.loads(path.read_text(encoding="utf-8"))[kind])
    except (OSError, KeyError, ValueError) as exc:
        raise CalibrationError(
            f"no {kind} calibration in {path} ({exc}): run `make train-reader`, or reinstall the bundled reader"
        ) from exc
