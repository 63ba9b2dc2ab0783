"""Gold-labelled identifiers inside synthetic notes, for measuring de-identification.

Note templates wrap every identifier they write in private-use markers (``mark``); ``unmark`` strips them and
returns the clean text with ``{"start", "end", "type", "text"}`` spans. Without ``--plant-pii`` only the
identifiers a note naturally carries (the patient's name, visit dates, ages over 89) are marked, and the
spans are thrown away. With it, :class:`PiiPlanter` adds more — relatives and their phone numbers in every
common written form, the ID number, the address, hospital numbers, insurance numbers, e-mail — and decoys
that a careless de-identifier would redact: herbs whose first character is a surname (陈皮, 黄芩), a viral
load shaped like a mobile number, and an 18-digit specimen barcode whose check digit is wrong. Decoys are
never labelled.

Types follow the detectors of the privacy layer: PERSON, ID_NUMBER, PHONE, ADDRESS, HOSPITAL_ID,
INSURANCE_ID, EMAIL, DATE, AGE (ages over 89, HIPAA Safe Harbor §164.514(b)(2)(i)(C)).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from medfusion.record.id_card import check_character
from medfusion.record.surnames import split_name
from medfusion.synth.names import pick_name

_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"
_MARKED = re.compile(f"{_OPEN}([A-Z_]+){_SEP}(.*?){_CLOSE}", re.DOTALL)


def mark(kind: str, text: str) -> str:
    return f"{_OPEN}{kind}{_SEP}{text}{_CLOSE}"


def unmark(text: str, offset: int = 0) -> tuple[str, list[dict[str, object]]]:
    """Strip markers; spans are character offsets into the clean text, shifted by ``offset``."""
    out: list[str] = []
    spans: list[dict[str, object]] = []
    position = 0
    length = 0
    for match in _MARKED.finditer(text):
        before = text[position : match.start()]
        out.append(before)
        length += len(before)
        value = match.group(2)
        spans.append(
            {
                "start": offset + length,
                "end": offset + length + len(value),
                "type": match.group(1),
                "text": value,
            }
        )
        out.append(value)
        length += len(value)
        position = match.end()
    out.append(text[position:])
    return "".join(out), spans


def unmark_sections(
    sections: list[tuple[str | None, str]],
) -> tuple[list[tuple[str | None, str]], list[dict[str, object]]]:
    """Strip markers from every section; spans index the note's joined text (``标题：内容`` lines)."""
    clean: list[tuple[str | None, str]] = []
    spans: list[dict[str, object]] = []
    offset = 0
    for title, text in sections:
        head = f"{title}：" if title else ""
        body, found = unmark(text, offset + len(head))
        clean.append((title, body))
        spans.extend(found)
        offset += len(head) + len(body) + 1  # the newline that joins sections
    return clean, spans


RELATIONS = ("其子", "其女", "配偶", "其妻", "其夫", "其孙", "家属", "联系人")
HERB_DECOYS = ("陈皮", "黄芩", "甘草", "何首乌", "白术", "柴胡", "杜仲", "黄芪", "连翘", "金银花")
EMAIL_DOMAINS = ("163.com", "qq.com", "126.com", "sina.com", "hotmail.com")


def phone_forms(rng: random.Random, number: str) -> str:
    """The same number as clinicians and forms write it."""
    if number.startswith("021-"):
        local = number[4:]
        return rng.choice(
            [number, f"(021){local}", f"（021）{local[:4]} {local[4:]}", f"+86-21-{local}", f"021 {local}"]
        )
    return rng.choice(
        [
            number,
            f"{number[:3]}-{number[3:7]}-{number[7:]}",
            f"{number[:3]} {number[3:7]} {number[7:]}",
            f"+86 {number}",
            f"+86-{number}",
            f"86{number}",
        ]
    )


@dataclass
class PatientIdentifiers:
    name: str
    sex: str
    id_number: str
    phone: str
    address: str
    inpatient_no: str
    outpatient_no: str
    record_no: str
    insurance_no: str


class PiiPlanter:
    """Adds labelled identifiers (and unlabelled decoys) to a note's sections; its own RNG, so planting never
    changes the rest of the chart."""

    def __init__(self, seed: int, index: int, who: PatientIdentifiers) -> None:
        self.rng = random.Random(f"medfusion-pii:{seed}:{index}")
        self.who = who
        rng = self.rng
        self.relatives = [self._relative(rng.choice(RELATIONS)) for _ in range(2)]
        self.relative_phones = [
            rng.choice(("139", "186", "158")) + f"{rng.randrange(10**8):08d}" for _ in range(2)
        ]

    def _relative(self, relation: str) -> tuple[str, str]:
        """Children and grandchildren carry the patient's surname (the usual case in China)."""
        rng = self.rng
        male = {"其子": True, "其夫": True, "其孙": True, "其女": False, "其妻": False}.get(relation)
        sex = ("male" if male else "female") if male is not None else rng.choice(("male", "female"))
        name = pick_name(rng, sex, rng.randint(1950, 1998))
        if relation in ("其子", "其女", "其孙"):
            name = split_name(self.who.name)[0] + split_name(name)[1]
        return relation, name

    def plant(self, sections: list[tuple[str | None, str]]) -> list[tuple[str | None, str]]:
        rng, who = self.rng, self.who
        out = list(sections)
        facts = [
            f"身份证号：{mark('ID_NUMBER', who.id_number)}。",
            f"现住址：{mark('ADDRESS', who.address)}。",
            f"本人电话：{mark('PHONE', phone_forms(rng, who.phone))}。",
            rng.choice(["住院号：", "住院号 ", "ZYH:"]) + mark("HOSPITAL_ID", who.inpatient_no) + "。",
            rng.choice(["门诊号：", "门诊ID "]) + mark("HOSPITAL_ID", who.outpatient_no) + "。",
            f"病案号：{mark('HOSPITAL_ID', who.record_no)}。",
            f"医保卡号：{mark('INSURANCE_ID', who.insurance_no)}。",
        ]
        for (relation, name), phone in zip(self.relatives, self.relative_phones, strict=True):
            facts.append(f"{relation}{mark('PERSON', name)}，电话{mark('PHONE', phone_forms(rng, phone))}。")
        if rng.random() < 0.3:
            user = f"{rng.choice(['zhang', 'wang', 'li', 'chen', 'liu'])}{rng.randint(1960, 2005)}"
            facts.append(f"邮箱：{mark('EMAIL', user + '@' + rng.choice(EMAIL_DOMAINS))}。")
        rng.shuffle(facts)
        chosen = facts[: rng.randint(3, len(facts))]
        decoys = [
            "中药："
            + "、".join(f"{h}{rng.choice([6, 9, 10, 12, 15])}g" for h in rng.sample(HERB_DECOYS, 3))
            + "。",
            f"HBV-DNA {rng.choice(['13', '15', '18'])}{rng.randrange(10**9):09d} IU/mL。",
            f"标本条码：{self._wrong_check_barcode()}。",
        ]
        chosen.extend(rng.sample(decoys, rng.randint(1, len(decoys))))
        rng.shuffle(chosen)
        contact = "".join(chosen)
        index = rng.randrange(len(out) + 1)
        out.insert(index, ("联系人及其他信息" if rng.random() < 0.5 else None, contact))
        return out

    def _wrong_check_barcode(self) -> str:
        first17 = "31" + "".join(str(self.rng.randrange(10)) for _ in range(15))
        right = check_character(first17)
        wrong = self.rng.choice([c for c in "0123456789X" if c != right])
        return first17 + wrong
