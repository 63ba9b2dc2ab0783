"""What counts as an identifier, and the tag each one is replaced by.

Direct identifiers per GB/T 37964-2019 §3.6 / annex A (names, ID numbers, contact details, addresses,
account and card numbers, record numbers, network identifiers, biometric …) and the HIPAA Safe Harbor list
(45 CFR §164.514(b)(2): all elements of dates except year; ages over 89) as a cross-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EntityType(StrEnum):
    PERSON = "PERSON"
    ID_NUMBER = "ID_NUMBER"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    ADDRESS = "ADDRESS"
    HOSPITAL_ID = "HOSPITAL_ID"
    INSURANCE_ID = "INSURANCE_ID"
    BANK_CARD = "BANK_CARD"
    CERTIFICATE = "CERTIFICATE"  # passports, 港澳通行证, 军官证 … by context
    LICENSE_PLATE = "LICENSE_PLATE"
    IP_ADDRESS = "IP_ADDRESS"
    URL = "URL"
    SOCIAL_ID = "SOCIAL_ID"  # WeChat and QQ ids
    DATE = "DATE"
    AGE = "AGE"  # ages over 89 only


TAGS: dict[EntityType, str] = {
    EntityType.PERSON: "[姓名]",
    EntityType.ID_NUMBER: "[身份证号]",
    EntityType.PHONE: "[电话]",
    EntityType.EMAIL: "[邮箱]",
    EntityType.ADDRESS: "[地址]",
    EntityType.HOSPITAL_ID: "[病历号]",
    EntityType.INSURANCE_ID: "[医保号]",
    EntityType.BANK_CARD: "[银行卡号]",
    EntityType.CERTIFICATE: "[证件号]",
    EntityType.LICENSE_PLATE: "[车牌号]",
    EntityType.IP_ADDRESS: "[IP地址]",
    EntityType.URL: "[网址]",
    EntityType.SOCIAL_ID: "[社交账号]",
    EntityType.DATE: "[日期]",
    EntityType.AGE: "[年龄]",
}

# Structured identifiers: the recall target is ≥ 0.99 for these, ≥ 0.95 for names and addresses.
STRUCTURED = frozenset(EntityType) - {EntityType.PERSON, EntityType.ADDRESS}


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    type: EntityType
    text: str
    score: float = 1.0
    recognizer: str = ""

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end
