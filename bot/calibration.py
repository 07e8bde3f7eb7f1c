"""The calibrator: a small logistic model that turns a candidate answer's evidence (the reader's scores and the
retrieval signals) into the probability that the answer is right.

It is fitted by `training/calibrate_reader.py` on SQuAD articles held out of the reader's training, and ships
beside the reader's weights with the abstention threshold chosen on those articles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CALIBRATION = "calibration.json"


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


def load_calibrator(folder: Path, kind: str) -> Calibrator:
    """The calibrator of `kind` ("reader" or "retrieval") stored in `folder`."""
    path = folder / CALIBRATION
    try:
        return Calibrator.from_json(json.loads(path.read_text(encoding="utf-8"))[kind])
    except (OSError, KeyError, ValueError) as exc:
        raise CalibrationError(
            f"no {kind} calibration in {path} ({exc}): run `make train-reader`, or reinstall the bundled reader"
        ) from exc
