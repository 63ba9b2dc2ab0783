"""Identifiers that have no checksum and no fixed shape, recognised by the label written before them:
hospital numbers (住院号, 门诊号, 病案号, 病历号, 床号, ZYH/MZH), insurance and social-security card numbers
(医保卡号, 社保卡号 — they carry no Luhn check), passports and other certificates, WeChat and QQ ids."""

from __future__ import annotations

import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer

_SEP = r"[\s:：#号为是]{0,3}"


def _labelled(labels: str, value: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{labels}){_SEP}(?P<value>{value})")


class _LabelledRecognizer(Recognizer):
    pattern: re.Pattern[str]
    score = 0.95

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in self.pattern.finditer(text):
            yield self.span(text, match.start("value"), match.end("value"), self.score)


class HospitalIdRecognizer(_LabelledRecognizer):
    name = "hospital_id"
    entity = EntityType.HOSPITAL_ID
    pattern = re.compile(
        r"(?:住院号|住院ID|住院id|门诊号|门诊ID|门诊id|门急诊号|病案号|病历号|登记号|就诊卡号|ZYH|MZH|BAH|MRN)"
        r"[\s:：#]{0,3}(?P<value>[A-Za-z]{0,3}\d[\dA-Za-z-]{2,19})(?![\dA-Za-z])"
        r"|床号[\s:：]{0,3}(?P<bed>\d{1,4}[A-Za-z]?)(?!\d)"
        r"|(?<![\d])(?P<ward_bed>\d{1,2}病区\d{1,3}床)"
    )

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in self.pattern.finditer(text):
            group = next(g for g in ("value", "bed", "ward_bed") if match.group(g))
            yield self.span(text, match.start(group), match.end(group), self.score)


class InsuranceRecognizer(_LabelledRecognizer):
    name = "insurance"
    entity = EntityType.INSURANCE_ID
    pattern = _labelled(
        r"医保卡号|医保号|医保账号|社保卡号|社保号|社会保障卡号|社会保障号|医疗保险号|参保号|医保编号",
        r"[A-Za-z]{0,2}\d[\dA-Za-z]{5,19}(?![\dA-Za-z])",
    )


class CertificateRecognizer(_LabelledRecognizer):
    name = "certificate"
    entity = EntityType.CERTIFICATE
    pattern = _labelled(
        r"护照号码|护照号|护照|[Pp]assport(?: [Nn]o\.?)?|港澳通行证|往来港澳通行证|台湾通行证|台胞证|"
        r"回乡证|军官证|士兵证|"
        r"驾驶证号|驾照号|外国人永久居留证|居留证号|证件号码|证件号",
        r"[A-Za-z]{0,2}\d[\dA-Za-z]{5,17}(?![\dA-Za-z])",
    )


class SocialIdRecognizer(_LabelledRecognizer):
    name = "social_id"
    entity = EntityType.SOCIAL_ID
    pattern = re.compile(
        r"(?:微信号?|[Ww]e[Cc]hat|VX|vx|WX|wx)[\s:：]{0,3}(?P<value>[A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9])"
        r"|(?:QQ号?|qq号?)[\s:：]{0,3}(?P<qq>[1-9]\d{4,11})(?!\d)"
    )

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in self.pattern.finditer(text):
            group = "value" if match.group("value") else "qq"
            yield self.span(text, match.start(group), match.end(group), self.score)
