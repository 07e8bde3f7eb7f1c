"""Questions → cited answers, served on Discord and on the command line."""

import index  # noqa: F401  (sets HF_HUB_OFFLINE before any model library is imported)
