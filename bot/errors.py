"""The failures whose message says what to do: front ends show them as they are, without a traceback."""

from bot.calibration import CalibrationError
from bot.settings import SettingsError
from index.documents import CorpusError, DocumentError
from index.embedder import ModelError
from index.folder import BuildInProgress
from index.store import StoreError


class InvalidQuestion(ValueError):
    """The question cannot be asked as it is; the message tells the user what to do."""


KNOWN_ERRORS = (SettingsError, CorpusError, StoreError, ModelError, CalibrationError, BuildInProgress, DocumentError)
