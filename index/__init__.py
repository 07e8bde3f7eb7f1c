"""Documents, passages, embeddings and FAISS. Models load offline only: the hub is never reached for, so this is
set before any module imports huggingface_hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
