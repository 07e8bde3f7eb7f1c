"""FAISS vector indexes over normalised embeddings: exact for small corpora, approximate for large ones.

The index is described by a FAISS index-factory string, so any layout FAISS offers can be chosen by a setting.
Inner product over unit vectors is cosine similarity.
"""

from __future__ import annotations

import math
import re

import faiss
import numpy as np

EXACT = "Flat"
AUTO = "auto"


def factory_string(index_type: str, n_vectors: int, approx_threshold: int) -> str:
    """The factory string to build for `n_vectors`: `index_type` itself, or under "auto" exact up to the
    threshold and above it IVF with about 4·√n lists and 8-bit scalar-quantised vectors (a quarter of the memory;
    inner products within about 0.002 of the exact ones, so re-scoring candidates from them stays faithful)."""
    if index_type != AUTO:
        return index_type
    if n_vectors <= approx_threshold:
        return EXACT
    n_lists = 1 << max(4, round(math.log2(4 * math.sqrt(n_vectors))))
    return f"IVF{n_lists},SQ8"


def build_index(vectors: np.ndarray, factory: str, rows: np.ndarray | None = None, block: int = 65_536) -> faiss.Index:
    """A trained index for the given factory string, holding `vectors[rows]` (float32, normalised; all rows by
    default) in that order. Rows are gathered a block at a time: a corpus whose texts repeat needs no second copy
    of its vectors."""
    rows = np.arange(len(vectors)) if rows is None else rows
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(_training_sample(vectors, factory))
    for start in range(0, len(rows), block):
        index.add(vectors[rows[start : start + block]])
    return index


def tune(index: faiss.Index, nprobe: int, ef_search: int) -> faiss.Index:
    """Set the search-time accuracy knobs of an approximate index (no-op for exact ones); returns it."""
    _set_ef_search(index, ef_search)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe
        ivf.make_direct_map()  # lets candidates be re-scored exactly by `reconstruct_batch`
        _set_ef_search(ivf.quantizer, max(ef_search, nprobe))  # an HNSW quantizer must find the `nprobe` lists
    return index


def _set_ef_search(index: faiss.Index, ef_search: int) -> None:
    """The candidate-list size of an HNSW index; other indexes have none."""
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = ef_search


def _training_sample(vectors: np.ndarray, factory: str, per_list: int = 64) -> np.ndarray:
    """At most `per_list` vectors per IVF list: FAISS's own k-means samples no more than that anyway."""
    ivf_lists = [int(n) for n in re.findall(r"IVF(\d+)", factory)]
    limit = per_list * max(ivf_lists, default=len(vectors))
    if len(vectors) <= limit:
        return vectors
    rows = np.random.default_rng(0).choice(len(vectors), size=limit, replace=False)
    return vectors[np.sort(rows)]
