"""The bundled reader and the answerer around it: spans read in context, long passages, corrupt or missing
weights, another question-answering model in its place, no reader at all, and the calibrated threshold."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from bot.calibration import BUNDLED, CALIBRATION, load_calibrator
from bot.engine import Engine
from bot.reader import BUNDLED_DIR, CARD, WEIGHTS, Context, Reader, clearly_faster, load_bundled, windows
from bot.settings import Settings
from index.embedder import Embedder, ModelError

pytestmark = pytest.mark.slow

SECRETARIAT = "Who heads WeGO's secretariat?"


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load()


def test_the_answer_is_read_through_a_pronoun(reader: Reader) -> None:
    passage = "Its head coach is Maria Lindqvist."
    before = "The Northern Rowing League of 2031 opens in Bergen."
    [reading] = reader.read("Who is the head coach of the Northern Rowing League?", [Context(before, passage)])
    assert passage[reading.start : reading.end] == "Maria Lindqvist"
    assert reading.margin > 0


def test_spans_come_from_the_passage_never_from_the_text_before_it(reader: Reader) -> None:
    before = "The festival is held in Bergen every June."
    passage = "Tickets cost 150 kroner for adults."
    [reading] = reader.read("Where is the festival held?", [Context(before, passage)])
    assert 0 <= reading.start < reading.end <= len(passage)


def test_a_long_passage_is_read_in_windows_and_its_answer_still_found(reader: Reader) -> None:
    filler = " ".join(f"The committee met on day {i} to review the budget of the harbour district." for i in range(40))
    passage = f"{filler} The harbour's lighthouse keeper is Ilse Marrow."
    question = "Who is the harbour's lighthouse keeper?"
    encoded = windows(reader.tokenizer, [question], [Context("", passage)], reader.config)
    assert len(encoded["input_ids"]) > 2, "the passage does not fit one window"
    [reading] = reader.read(question, [Context("", passage)])
    assert passage[reading.start : reading.end] == "Ilse Marrow"


def test_one_reading_per_passage_in_order(reader: Reader) -> None:
    contexts = [Context("", "Oslo is the capital of Norway."), Context("", "Bees make honey in hives.")]
    readings = reader.read("What is the capital of Norway?", contexts)
    assert len(readings) == 2 and readings[0].margin > readings[1].margin
    assert contexts[0].passage[readings[0].start : readings[0].end] == "Oslo"


def test_corrupt_weights_are_refused_with_a_fix(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(BUNDLED_DIR, tmp_path / "reader"))
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="READER_MODEL=none"):
        load_bundled(folder)


def test_the_card_records_how_the_weights_were_trained_and_how_they_did() -> None:
    card = json.loads((BUNDLED_DIR / CARD).read_text(encoding="utf-8"))
    assert card["base_model"] == "all-MiniLM-L6-v2" and card["training"]["held_out"]
    assert not set(card["training"]["held_out"]) & set(card["training"]["articles"])
    assert card["held_out_metrics"]["f1"] > 0.5
    assert (BUNDLED_DIR / WEIGHTS).stat().st_size < 50 * 2**20


def test_the_threshold_was_calibrated_to_keep_most_answerable_questions() -> None:
    for kind in ("reader", "retrieval"):
        calibrator = load_calibrator(BUNDLED_DIR, kind)
        assert 0.0 < calibrator.threshold < 1.0
    reader = load_calibrator(BUNDLED_DIR, "reader")
    evidence = dict.fromkeys(reader.features, 0.0)
    assert reader.probability(evidence | {"margin": 5.0}) > reader.probability(evidence | {"margin": -5.0})


def test_another_question_answering_model_can_be_configured(
    reader: Reader, settings: Settings, embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "my-reader"
    reader.model.save_pretrained(folder)
    reader.tokenizer.save_pretrained(folder)
    custom = settings.model_copy(update={"reader_model": str(folder)})
    with caplog.at_level(logging.WARNING, logger="bot.engine"):
        answer = Engine(custom, embedder).ask(SECRETARIAT)
    assert answer.short_answer is not None and "Park Jung-sook" in answer.short_answer
    assert "no calibration.json" in caplog.text


def test_a_folder_written_by_the_training_script_can_be_configured(
    settings: Settings, embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Path(shutil.copytree(BUNDLED_DIR, tmp_path / "trained"))  # what `train_reader.py --out` writes
    calibration = json.loads((folder / CALIBRATION).read_text(encoding="utf-8"))
    for kind in calibration:
        calibration[kind]["threshold"] = 0.999
    (folder / CALIBRATION).write_text(json.dumps(calibration), encoding="utf-8")
    custom = settings.model_copy(update={"reader_model": str(folder), "min_confidence": None})
    with caplog.at_level(logging.WARNING, logger="bot.calibration"):
        engine = Engine(custom, embedder)
    assert engine.ask(SECRETARIAT).abstained, "the folder's own calibrated threshold applies"
    assert "no calibration.json" not in caplog.text


def test_a_missing_reader_model_is_named_in_the_error(settings: Settings, embedder: Embedder, tmp_path: Path) -> None:
    missing = settings.model_copy(update={"reader_model": str(tmp_path / "nowhere")})
    with pytest.raises(ModelError, match="READER_MODEL"):
        Engine(missing, embedder)


def test_without_a_reader_the_closest_sentence_answers(settings: Settings, embedder: Embedder) -> None:
    engine = Engine(settings.model_copy(update={"reader_model": "none"}), embedder)
    answer = engine.ask(SECRETARIAT)
    assert not answer.abstained and answer.short_answer is None and "Park Jung-sook" in answer.text
    assert engine.ask("Who won the 2022 FIFA World Cup?").abstained


def test_min_confidence_is_the_probability_an_answer_needs(settings: Settings, embedder: Embedder) -> None:
    strict = Engine(settings.model_copy(update={"min_confidence": 1.0}), embedder).ask(SECRETARIAT)
    assert strict.abstained and strict.see_also and 0.0 < strict.confidence < 1.0
    lax = Engine(settings.model_copy(update={"min_confidence": 0.0}), embedder).ask("What is the capital of France?")
    assert not lax.abstained and lax.citations


def test_auto_precision_needs_a_clear_speed_up_not_just_the_instructions() -> None:
    assert not clearly_faster(1.0, 1.0), "bf16 instructions that run no faster keep the reader in fp32"
    assert not clearly_faster(1.0, 0.9) and clearly_faster(1.0, 0.5)


def test_an_explicit_precision_is_used_whatever_this_cpu_measures() -> None:
    assert Reader.load(BUNDLED, "fp32").bf16 is False and Reader.load(BUNDLED, "bf16").bf16 is True


def test_bf16_reads_the_same_spans_as_fp32(reader: Reader) -> None:
    full = Reader(reader.model, reader.tokenizer, reader.config, bf16=False)
    half = Reader(reader.model, reader.tokenizer, reader.config, bf16=True)
    passages = [
        Context("", "WeGO’s secretariat in Seoul is headed by Secretary-General Park Jung-sook."),
        Context("The Northern Rowing League of 2031 opens in Bergen.", "Its head coach is Maria Lindqvist."),
        Context("", "Tickets cost 150 kroner for adults."),
    ]
    for question in (SECRETARIAT, "Who is the head coach?", "How much is a ticket?"):
        for a, b in zip(full.read(question, passages), half.read(question, passages), strict=True):
            assert (a.start, a.end) == (b.start, b.end)
            assert abs(a.margin - b.margin) < 0.5
