"""The base index and each server's own: what a question in a server is answered from, and what a change there
edits.

The base (CORPUS_DIR) is shared by every server; each server's documents live in their own folder,
`SERVERS_DIR/<server id>/corpus`, indexed in `SERVERS_DIR/<server id>/index` and published like the base (atomic
`current` link, one build at a time). Server indexes are opened on first use and closed least recently used
first when their files add up to more than the memory budget; a server opened again reads its index from disk.
Nothing of one server is ever searched or changed from another.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from index.embedder import Embedder
from index.folder import BuildInProgress
from index.manager import Editing, IndexManager, Sources
from index.store import Store

log = logging.getLogger(__name__)

CORPUS = "corpus"
INDEX = "index"


class Library:
    """The base IndexManager and, per server id, that server's own, opened on demand under a memory budget."""

    def __init__(
        self,
        base: IndexManager,
        servers_dir: Path,
        editing: Editing,
        memory_bytes: int = 1 << 30,
        shared_base: bool = True,
    ) -> None:
        self.base = base
        self.servers_dir = servers_dir
        self.editing = editing  # the rules for servers' documents (the base has its own)
        self.memory_bytes = memory_bytes
        self.shared_base = shared_base  # False: a server answers from its own documents only
        self._open: OrderedDict[int, IndexManager] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        return self.base.embedder

    def stores(self, server: int | None) -> tuple[Store, ...]:
        """What a question is answered from: in a server, the base (unless not shared) and the server's own
        documents; elsewhere (a DM, the terminal), the base."""
        if server is None:
            return _present(self.base.store)
        own = self.server(server) if self._exists(server) else None
        return _present(self.base.store if self.shared_base else None, own.store if own else None)

    def manager(self, server: int | None) -> IndexManager:
        """The index a change made in `server` edits: that server's own (empty until its first document), or the
        base for None."""
        return self.base if server is None else self.server(server)

    def sources(self, server: int) -> Sources:
        """A server's own documents (none yet: an empty list), without opening anything for a server that has none."""
        if not self._exists(server):
            return Sources([], "", self.embedder.name, 0)
        return self.server(server).sources()

    def server(self, server: int) -> IndexManager:
        """A server's own index, opened (and older ones closed to stay within the budget) when not open yet."""
        with self._lock:
            manager = self._open.get(server)
            if manager is None:
                manager = self._make(server)
                self._open[server] = manager
            self._open.move_to_end(server)
            self._evict(keep=server)
            return manager

    def servers(self) -> list[int]:
        """The servers that have documents of their own."""
        if not self.servers_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.servers_dir.iterdir() if p.name.isdigit() and self._exists(int(p.name)))

    def forget(self, server: int) -> bool:
        """Delete a server's documents and index; True when it had any. BuildInProgress while one of its
        documents is being added or removed."""
        with self._lock:
            if (opened := self._open.get(server)) is not None and opened.rebuilding:
                raise BuildInProgress("the server's documents are being changed; try again when that is done")
            self._open.pop(server, None)
            folder = self._folder(server)
            existed = folder.exists()
            shutil.rmtree(folder, ignore_errors=True)
        if existed:
            log.info("server %d forgotten: its documents and index are deleted", server)
        return existed

    def refresh(self) -> None:
        """Serve what other processes published, for the base and every open server index."""
        self.base.refresh()
        with self._lock:
            opened = list(self._open.values())
        for manager in opened:
            manager.refresh()

    def _make(self, server: int) -> IndexManager:
        folder = self._folder(server)
        config = replace(self.base.config, corpus_dir=folder / CORPUS, index_dir=folder / INDEX)
        return IndexManager(config, self.base.embedder, self.editing, self.base.tuning, required=False)

    def _evict(self, keep: int) -> None:
        """Close least recently used server indexes while the open ones exceed the budget (never `keep`, nor one
        being changed)."""
        for server in list(self._open):
            if sum(m.footprint for m in self._open.values()) <= self.memory_bytes:
                return
            if server != keep and not self._open[server].rebuilding:
                del self._open[server]
                log.debug("server %d's index closed to stay within the memory budget", server)

    def _exists(self, server: int) -> bool:
        """Whether the server has a published index (the test that costs no load)."""
        return (self._folder(server) / INDEX / "current").is_symlink()

    def _folder(self, server: int) -> Path:
        return self.servers_dir / str(int(server))


def _present(*stores: Store | None) -> tuple[Store, ...]:
    return tuple(s for s in stores if s is not None)
