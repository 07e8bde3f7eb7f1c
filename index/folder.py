"""The index folder on disk: builds are written beside the live one and swapped in atomically.

Layout: `INDEX_DIR/current` is a symlink to `INDEX_DIR/builds/<name>`. A build writes `builds/<name>.partial`,
renames it when complete and then replaces the symlink with `os.replace`, which is atomic on POSIX: a reader sees
the old index or the new one, never a mix, and a build that fails or is killed leaves `current` untouched.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL = ".partial"


class BuildInProgress(Exception):
    """Another build holds the index folder's lock."""


class IndexFolder:
    """Where the live index is, and how a new one replaces it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.builds = root / "builds"
        self.link = root / "current"

    def current(self) -> Path | None:
        """The live build's folder, or None when nothing has been built yet."""
        return self.link.resolve() if self.link.is_symlink() and self.link.resolve().is_dir() else None

    @contextmanager
    def new_build(self) -> Iterator[Path]:
        """A fresh folder to write a build into; published as `current` if the block completes, removed if
        it raises. Only one build at a time: a second one raises BuildInProgress at once."""
        self.builds.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._remove_partials()
            name = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 10**9:09d}"
            partial = self.builds / (name + PARTIAL)
            partial.mkdir()
            try:
                yield partial
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            final = partial.rename(self.builds / name)
            self._point_current_to(final)
            self._remove_old_builds(keep=final)

    def retire(self) -> None:
        """Withdraw the published index: `current` goes, then the builds (the embedding cache stays)."""
        with self._lock():
            self.link.unlink(missing_ok=True)
            shutil.rmtree(self.builds, ignore_errors=True)

    def _point_current_to(self, build: Path) -> None:
        temporary = self.root / f".current-{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(build.relative_to(self.root))
        os.replace(temporary, self.link)

    def _remove_partials(self) -> None:
        """Leftovers of builds that were killed: safe to delete while we hold the lock."""
        for path in self.builds.glob("*" + PARTIAL):
            shutil.rmtree(path, ignore_errors=True)

    def _remove_old_builds(self, keep: Path) -> None:
        for path in self.builds.iterdir():
            if path != keep and not path.name.endswith(PARTIAL):
                shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BuildInProgress(f"another build of {self.root} is running; wait for it to finish") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
