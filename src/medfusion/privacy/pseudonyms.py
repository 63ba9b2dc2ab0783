"""Consistent pseudonymisation with a keyed HMAC (GB/T 37964-2019 §5.3.2 pseudonymisation; HMAC-SHA256 per
RFC 2104): the same identifier gets the same surrogate in every document of a project that uses the same key,
and without the key a surrogate cannot be linked back. Surrogates keep the shape of what they replace —
realistic names, ID numbers with valid GB 11643 check characters (birth year and sex kept for clinical
utility), phone numbers of the same kind and layout, bank cards passing Luhn — so downstream NLP and models
see natural text. Dates move by a per-patient offset (intervals preserved)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path

from medfusion.errors import InvalidInput
from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.cards import luhn_ok
from medfusion.record.districts import DISTRICTS
from medfusion.record.id_card import make_id_number
from medfusion.record.names import MIDDLE_ERA_GIVEN, SURNAMES

KEY_BYTES = 32
_ROADS = (
    "长乐路",
    "延安中路",
    "武夷路",
    "南京西路",
    "四平路",
    "中山北路",
    "张杨路",
    "漕宝路",
    "共和新路",
    "真北路",
)
_SURNAME_POOL = [s for s, _ in SURNAMES if len(s) == 1]
_GIVEN_POOL = sorted({c for name in MIDDLE_ERA_GIVEN for c in name})


def load_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError):
        raise InvalidInput.for_field(
            "--key-file", f"无法读取密钥 cannot read a hex key from {path}"
        ) from None
    if len(key) < 16:
        raise InvalidInput.for_field("--key-file", "密钥至少128位 key must be at least 16 bytes")
    return key


def create_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()

    def _number(self, *parts: str) -> int:
        return int.from_bytes(self.digest(*parts), "big")

    def date_offset(self, subject: str) -> int:
        """Days to move every date of one patient: ±1–365, never 0 (fixed per key and patient)."""
        value = self._number("date-offset", subject) % 730
        return value - 365 if value < 365 else value - 364

    # --- per type -----------------------------------------------------------------------------
    def name(self, original: str) -> str:
        n = self._number("PERSON", original)
        surname = _SURNAME_POOL[n % len(_SURNAME_POOL)]
        given_length = 1 if len(original) <= 2 else 2
        given = "".join(_GIVEN_POOL[(n >> (8 * (i + 1))) % len(_GIVEN_POOL)] for i in range(given_length))
        return surname + given if len(original) > 1 else surname

    def id_number(self, original: str) -> str:
        n = self._number("ID_NUMBER", original.upper())
        value = original.upper()
        try:
            year = int(value[6:10]) if len(value) == 18 else 1900 + int(value[6:8])
            male = int(value[16] if len(value) == 18 else value[14]) % 2 == 1
        except (ValueError, IndexError):
            year, male = 1970, n % 2 == 1
        born = date(year, 1, 1) + timedelta(days=(n >> 16) % 365)
        district = DISTRICTS[n % len(DISTRICTS)]
        sequence = ((n >> 40) % 500) * 2 + (1 if male else 0)
        return make_id_number(district.code, born, sequence)

    def digits_like(self, kind: str, original: str, keep_prefix: int = 0) -> str:
        """Same layout, same letters-or-digits at each position, new values."""
        stream = self.digest(kind, original)
        out, index, kept = [], 0, 0
        for char in original:
            if char.isdigit() or (char.isascii() and char.isalpha()):
                if kept < keep_prefix:
                    out.append(char)
                    kept += 1
                    continue
                byte = stream[index % len(stream)]
                index += 1
                out.append(str(byte % 10) if char.isdigit() else chr(ord("A") + byte % 26))
            else:
                out.append(char)
        return "".join(out)

    def phone(self, original: str) -> str:
        digits = re.sub(r"\D", "", original)
        mobile = bool(re.search(r"1[3-9]\d{9}$", digits))
        if mobile:
            prefix_digits = len(digits) - 8  # country code (if any) + the 3-digit mobile prefix stay
        else:
            area = re.match(r"(?:86)?(0?\d{2,3})", digits)
            prefix_digits = len(area.group()) if area else 0
        return self.digits_like("PHONE", original, keep_prefix=prefix_digits)

    def bank_card(self, original: str) -> str:
        candidate = self.digits_like("BANK_CARD", original, keep_prefix=6)
        digits = re.sub(r"\D", "", candidate)
        for last in "0123456789":
            if luhn_ok(digits[:-1] + last):
                position = max(i for i, c in enumerate(candidate) if c.isdigit())
                return candidate[:position] + last + candidate[position + 1 :]
        return candidate

    def email(self, original: str) -> str:
        _local, _, domain = original.partition("@")
        common = {"163.com", "126.com", "qq.com", "sina.com", "hotmail.com", "gmail.com", "outlook.com"}
        user = "u" + self.digest("EMAIL", original).hex()[:8]
        return f"{user}@{domain if domain.lower() in common else 'example.cn'}"

    def address(self, original: str) -> str:
        n = self._number("ADDRESS", original)
        head = re.match(r"^(.*?(?:区|县|旗))", original)
        prefix = head.group(1) if head else ""
        road = _ROADS[n % len(_ROADS)]
        return f"{prefix}{road}{(n >> 8) % 1500 + 1}号{(n >> 20) % 30 + 1}{(n >> 28) % 4 + 1:02d}室"

    def surrogate(self, span: Span) -> str:
        text = span.text
        match span.type:
            case EntityType.PERSON:
                return self.name(text)
            case EntityType.ID_NUMBER:
                return self.id_number(text)
            case EntityType.PHONE:
                return self.phone(text)
            case EntityType.BANK_CARD:
                return self.bank_card(text)
            case EntityType.EMAIL:
                return self.email(text)
            case EntityType.ADDRESS:
                return self.address(text)
            case EntityType.URL:
                return "https://example.cn/" + self.digest("URL", text).hex()[:10]
            case EntityType.IP_ADDRESS:
                d = self.digest("IP", text)
                return f"10.{d[0]}.{d[1]}.{d[2]}"
            case EntityType.AGE:
                return "90岁以上"
            case _:
                return self.digits_like(span.type.value, text)
