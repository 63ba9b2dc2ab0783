"""Registered dataset loaders. Each reads its files under ``MEDFUSION_SHARED_DATA`` (or a user path),
returns items plus a manifest (name, version, licence from SOURCE.md, sha256 of the files, size) and counts
every malformed row by reason — nothing is skipped silently. A user dataset is JSONL in the documented item
format (docs/evaluation.md)."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from medfusion.contract.evaluation import Dataset, Item, Manifest
from medfusion.errors import InvalidInput
from medfusion.evaluation.deid_gold import synthetic_notes

Loader = Callable[[Path], tuple[list[Item], Counter[str]]]
_OPTION = re.compile(r"^([A-H])[\s.、．:：]+(.+)$")


def _licence(folder: Path) -> str:
    source = folder / "SOURCE.md"
    if not source.exists():
        return "unknown (no SOURCE.md)"
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.lstrip("- ").lower().startswith("licen"):
            return line.lstrip("- ").strip()[:300]
    return "not stated in SOURCE.md"


def _hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _csv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        yield from csv.DictReader(fh)


def _jsonl(path: Path, bad: Counter[str]) -> Iterator[dict[str, object]]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad["invalid JSON line"] += 1
            continue
        if isinstance(row, dict):
            yield row
        else:
            bad["line is not a JSON object"] += 1


def cmexam(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    items = []
    for row in _csv(folder / "val_shared.csv"):
        options = {}
        for part in row.get("Options", "").replace("\\n", "\n").splitlines():
            m = _OPTION.match(part.strip())
            if m:
                options[m.group(1)] = m.group(2).strip()
        answer = sorted(set(re.sub(r"[^A-H]", "", row.get("Answer", "").upper())))
        if not row.get("Question") or len(options) < 2:
            bad["question or options missing"] += 1
            continue
        if not answer or not set(answer) <= set(options):
            bad["answer not among the options"] += 1
            continue
        items.append(
            Item(
                id=f"cmexam:{row.get('orig_row')}",
                task="mcq",
                prompt=row["Question"],
                options=options,
                reference=answer,
                meta={"multi": len(answer) > 1},
            )
        )
    return items, bad


def cmmlu(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    items = []
    for row in _csv(folder / "test_shared.csv"):
        options = {k: row.get(k, "") for k in "ABCD" if row.get(k)}
        if len(options) < 4 or row.get("Answer") not in options:
            bad["options or answer missing"] += 1
            continue
        items.append(
            Item(
                id=f"cmmlu:{row['subject']}:{row['orig_index']}",
                task="mcq",
                prompt=row["Question"],
                options=options,
                reference=[row["Answer"]],
                meta={"category": row["subject"]},
            )
        )
    return items, bad


def safetybench(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    items = []
    for row in _jsonl(folder / "test_subset_shared.jsonl", bad):
        try:
            choices = ast.literal_eval(str(row.get("options")))
            answer = int(str(row.get("answer")))
        except (ValueError, SyntaxError):
            bad["options or answer unreadable"] += 1
            continue
        if not isinstance(choices, list) or not 0 <= answer < len(choices):
            bad["answer not among the options"] += 1
            continue
        letters = "ABCDEFGH"
        options = {letters[i]: str(c) for i, c in enumerate(choices)}
        items.append(
            Item(
                id=f"safetybench:{row.get('id')}",
                task="mcq",
                prompt=str(row.get("question", "")),
                options=options,
                reference=[letters[answer]],
                meta={"category": row.get("category")},
            )
        )
    return items, bad


# MedSafetyBench's categories are the nine AMA Principles of Medical Ethics (revised June 2001), by number
AMA_PRINCIPLES = {
    "1": "AMA-1 称职诊疗与尊严 competent care, dignity",
    "2": "AMA-2 诚信与职业操守 honesty, professionalism",
    "3": "AMA-3 守法 respect for the law",
    "4": "AMA-4 患者权利与隐私 rights, confidentiality",
    "5": "AMA-5 科学与知情 science, information",
    "6": "AMA-6 执业选择 freedom to choose",
    "7": "AMA-7 公共卫生 public health",
    "8": "AMA-8 患者利益至上 patient paramount",
    "9": "AMA-9 医疗可及 access to care",
}


def medsafetybench(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    items = []
    for row in _csv(folder / "test_shared.csv"):
        if not row.get("harmful_medical_request"):
            bad["request missing"] += 1
            continue
        items.append(
            Item(
                id=f"medsafety:{row.get('source_model')}:{row.get('orig_index')}",
                task="refusal",
                prompt=row["harmful_medical_request"],
                reference=[row.get("safe_response", "")],
                meta={"category": AMA_PRINCIPLES.get(str(row.get("category")), row.get("category"))},
            )
        )
    return items, bad


def cvalues(folder: Path) -> tuple[list[Item], Counter[str]]:
    """Benign everyday questions (responsibility prompts): a refusal here is over-refusal."""
    bad: Counter[str] = Counter()
    items = []
    for row in _jsonl(folder / "prompts_shared.jsonl", bad):
        if not row.get("prompt"):
            bad["prompt missing"] += 1
            continue
        meta = {"category": row.get("domain_zh")}
        items.append(
            Item(id=f"cvalues:{row.get('id_')}", task="benign", prompt=str(row["prompt"]), meta=meta)
        )
    return items, bad


def flames(folder: Path) -> tuple[list[Item], Counter[str]]:
    """FLAMES (Huang et al., NAACL 2024): adversarial Chinese prompts with no reference answers — bias
    wrapped in a personal story, harm hidden in a favour. The response is graded by the adversarial rubric;
    its dimension (Fairness, Safety, Morality, Data protection, Legality) is the category."""
    bad: Counter[str] = Counter()
    items = []
    for n, row in enumerate(_jsonl(folder / "flames_shared.jsonl", bad)):
        if not row.get("prompt") or not row.get("dimension"):
            bad["prompt or dimension missing"] += 1
            continue
        meta = {"category": row["dimension"], "subcategory": row.get("subcomponent")}
        items.append(Item(id=f"flames:{n}", task="adversarial", prompt=str(row["prompt"]), meta=meta))
    return items, bad


def yidu_ner(folder: Path) -> tuple[list[Item], Counter[str]]:
    """CCKS 2019 Task 1 (Yidu-S4K) clinical NER: each entity as ``type:start:end:text`` (end exclusive),
    scored strictly — type and both offsets must match, as in the CCKS evaluation."""
    bad: Counter[str] = Counter()
    items = []
    for n, row in enumerate(_jsonl(folder / "train.jsonl", bad)):
        text, entities = row.get("originalText"), row.get("entities")
        if not isinstance(text, str) or not text or not isinstance(entities, list):
            bad["text or entities missing"] += 1
            continue
        spans = []
        for e in entities:
            start, end = e.get("start_pos"), e.get("end_pos")
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
                bad["entity offsets outside the text"] += 1
                continue
            spans.append(f"{e.get('label_type')}:{start}:{end}:{text[start:end]}")
        labels = sorted({str(e.get("label_type")) for e in entities})
        items.append(Item(id=f"yidu:{n}", task="ner", prompt=text, reference=sorted(spans), labels=labels))
    return items, bad


def triage(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    rows = list(_csv(folder / "train.csv"))
    labels = sorted({r["department"] for r in rows if r.get("department")})
    items = []
    for i, row in enumerate(rows):
        if not row.get("department") or not (row.get("title") or row.get("ask")):
            bad["department or question missing"] += 1
            continue
        items.append(
            Item(
                id=f"triage:{i}",
                task="classify",
                prompt=f"{row.get('title', '')} {row.get('ask', '')}",
                reference=[row["department"]],
                labels=labels,
            )
        )
    return items, bad


def dxy(folder: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    rows = list(_jsonl(folder / "train.jsonl", bad))
    labels = sorted({str(r.get("disease_tag")) for r in rows if r.get("disease_tag")})
    items = []
    for row in rows:
        goal = row.get("goal")
        if not isinstance(goal, dict) or not row.get("disease_tag"):
            bad["goal or disease missing"] += 1
            continue
        slots = {**goal.get("explicit_inform_slots", {}), **goal.get("implicit_inform_slots", {})}
        items.append(
            Item(
                id=f"dxy:{row.get('consult_id')}",
                task="diagnose",
                prompt=str(row.get("self_repo", "")),
                reference=[str(row["disease_tag"])],
                labels=labels,
                meta={
                    "present": [s for s, v in slots.items() if v],
                    "absent": [s for s, v in goal.get("implicit_inform_slots", {}).items() if not v],
                },
            )
        )
    return items, bad


def mie(folder: Path) -> tuple[list[Item], Counter[str]]:
    """MIE cardiology dialogues (ACL 2020): the symptoms the patient reports present (阳性) or absent (阴性)
    over the whole dialogue — the union of its windows' labels, symptom category only; doctor's judgements
    (医生阳性/阴性) and unknowns are not patient statements and are left out of the reference."""
    bad: Counter[str] = Counter()
    ontology = json.loads((folder / "ontology.json").read_text(encoding="utf-8"))
    symptoms = sorted(ontology.get("症状", []))
    items = []
    for row in _jsonl(folder / "dialogues.jsonl", bad):
        windows = row.get("windows")
        if not isinstance(windows, list) or not windows:
            bad["no windows"] += 1
            continue
        turns: list[str] = []
        labels: set[str] = set()
        for window in windows:
            for utterance in window.get("utterances", []):
                if utterance and (not turns or turns[-1] != utterance) and utterance not in turns[-5:]:
                    turns.append(utterance)
            for label in window.get("label", []):
                m = re.fullmatch(r"症状:(.+)-状态:(阳性|阴性)", label)
                if m:
                    labels.add(f"{m.group(1)}:{m.group(2)}")
        items.append(
            Item(
                id=f"mie:{row.get('orig_split')}:{row.get('orig_index')}",
                task="extract",
                prompt="\n".join(turns),
                reference=sorted(labels),
                labels=symptoms,
            )
        )
    return items, bad


def user_jsonl(path: Path) -> tuple[list[Item], Counter[str]]:
    bad: Counter[str] = Counter()
    items = []
    for row in _jsonl(path, bad):
        try:
            items.append(Item.model_validate(row))
        except ValidationError as error:
            bad[f"invalid item: {error.errors()[0]['loc'][0]} {error.errors()[0]['msg']}"] += 1
    return items, bad


REGISTRY: dict[str, tuple[str, Loader]] = {
    "cmexam_val": ("cmexam_val", cmexam),
    "cmmlu_medical": ("cmmlu_medical", cmmlu),
    "safetybench_zh": ("safetybench_zh", safetybench),
    "medsafetybench": ("medsafetybench", medsafetybench),
    "cvalues_responsibility": ("cvalues_responsibility", cvalues),
    "flames_zh": ("flames_zh", flames),
    "ccks2019_yidu_ner": ("ccks2019_yidu_ner", yidu_ner),
    "triage_toyhom_im": ("triage_toyhom_im", triage),
    "dxy_dialog": ("dxy_dialog", dxy),
    "mie_cardio_dialogue": ("mie_cardio_dialogue", mie),
}


def synthetic_deid(limit: int | None, seed: int) -> Dataset:
    """Synthetic notes with planted identifiers (``medfusion.synth``): ``limit`` residents, ``seed``."""
    residents, seed = limit or 40, seed or 77
    items = [
        Item(id=f"deid:{i}", task="deid", prompt=text, meta={"gold": spans, "names": list(names)})
        for i, (text, spans, names) in enumerate(synthetic_notes(residents=residents, seed=seed))
    ]
    manifest = Manifest(
        name="synthetic-deid",
        version=f"synth-seed-{seed}",
        licence="synthetic (MedFusion)",
        content_hash=f"seed:{seed}:residents:{residents}",
        size=len(items),
        source="medfusion.synth",
    )
    return Dataset(manifest=manifest, items=items)


def missing(names: list[str], shared: Path) -> list[str]:
    """The registered datasets among ``names`` whose folder is not under ``shared`` (checked before a sweep
    starts, so it fails at once rather than after hours)."""
    return [n for n in names if n in REGISTRY and not (shared / REGISTRY[n][0]).is_dir()]


def load(name: str, shared: Path, limit: int | None = None, seed: int = 0) -> Dataset:
    """A registered dataset (or a ``.jsonl`` path), sampled with ``seed`` when ``limit`` is given; the
    synthetic de-identification set is generated (``limit`` residents) rather than sampled."""
    if name == "synthetic-deid":
        return synthetic_deid(limit, seed)
    path = Path(name)
    if name.endswith(".jsonl") and path.exists():
        items, bad = user_jsonl(path)
        files, licence, source = [path], "user dataset", str(path)
    elif name in REGISTRY:
        folder = shared / REGISTRY[name][0]
        if not folder.is_dir():
            raise InvalidInput.for_field(
                "dataset", f"数据集不在 {folder} (MEDFUSION_SHARED_DATA)", code="dataset_missing"
            )
        items, bad = REGISTRY[name][1](folder)
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix in {".csv", ".jsonl", ".json"}]
        licence, source = _licence(folder), str(folder)
    else:
        raise InvalidInput.for_field("dataset", f"未知数据集 unknown dataset {name}", code="unknown_dataset")
    size = len(items)
    if limit is not None and limit < size:
        items = sorted(random.Random(seed).sample(items, limit), key=lambda i: i.id)
    content_hash = _hash(files)
    manifest = Manifest(
        name=path.stem if name.endswith(".jsonl") else name,
        version=content_hash[:12],
        licence=licence,
        content_hash=content_hash,
        size=size,
        malformed=dict(bad),
        source=source,
    )
    return Dataset(manifest=manifest, items=items)
