"""居民身份证号码 (PRC resident identity number) per GB 11643-1999 «公民身份号码».

18 characters: 6-digit address code, 8-digit birth date (YYYYMMDD), 3-digit sequence code (odd for men,
even for women), and a check character computed by ISO 7064:1983 MOD 11-2 over the first 17 digits with
weights 2^(17-i) mod 11 (GB 11643-1999 §8.2). The check character is one of 0-9 or X (for 10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from medfusion.record.clinical_time import today_local

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")


class IdNumberError(ValueError):
    """Raised with a Chinese + English reason when a number is not a valid 居民身份证号码."""


@dataclass(frozen=True)
class ResidentId:
    number: str
    region_code: str
    birth_date: date
    sex: str  # "male" | "female", from the parity of the sequence code

    @property
    def province_code(self) -> str:
        return self.region_code[:2]


def check_character(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise IdNumberError("前17位必须是数字 (first 17 characters must be digits)")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def parse_id_number(number: str, *, today: date | None = None) -> ResidentId:
    """Validate an 18-character number and return its parts; raises :class:`IdNumberError`."""
    value = number.strip().upper()
    if not _SHAPE.match(value):
        raise IdNumberError("身份证号须为17位数字加1位校验码 (must be 17 digits plus a check character)")
    if value[:2] in {"00", "10"} or value[0] == "0":
        raise IdNumberError("地址码无效 (invalid address code)")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise IdNumberError("出生日期码无效 (invalid birth date code)") from exc
    # today in Shanghai: a birth today there, while it is still yesterday in UTC, is valid
    if born < date(1880, 1, 1) or born > (today or today_local()):
        raise IdNumberError("出生日期不在合理范围 (birth date out of range)")
    expected = check_character(value[:17])
    if value[17] != expected:
        raise IdNumberError("校验码错误 (check character mismatch)")
    sex = "male" if int(value[16]) % 2 == 1 else "female"
    return ResidentId(number=value, region_code=value[:6], birth_date=born, sex=sex)


def is_valid_id_number(number: str) -> bool:
    try:
        parse_id_number(number)
    except IdNumberError:
        return False
    return True


def make_id_number(region_code: str, birth_date: date, sequence: int) -> str:
    """Compose a valid number; ``sequence`` (0–999) carries the sex in its parity."""
    if not (len(region_code) == 6 and region_code.isdigit()):
        raise IdNumberError("地址码须为6位数字 (region code must be 6 digits)")
    if not 0 <= sequence <= 999:
        raise IdNumberError("顺序码须在000–999 (sequence must be 000–999)")
    first17 = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)
