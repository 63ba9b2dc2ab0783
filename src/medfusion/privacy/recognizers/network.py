"""E-mail addresses, URLs and IPv4/IPv6 addresses (each octet checked)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from medfusion.privacy.entities import EntityType, Span
from medfusion.privacy.recognizers.base import Context, Recognizer

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}"
)
_URL = re.compile(r"(?:https?://|ftp://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![:\w])")


class EmailRecognizer(Recognizer):
    name = "email"
    entity = EntityType.EMAIL

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _EMAIL.finditer(text):
            yield self.span(text, match.start(), match.end())


class UrlRecognizer(Recognizer):
    name = "url"
    entity = EntityType.URL

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for match in _URL.finditer(text):
            end = match.end()
            while end > match.start() and text[end - 1] in ".,;:)]'":
                end -= 1
            yield self.span(text, match.start(), end)


class IpRecognizer(Recognizer):
    name = "ip"
    entity = EntityType.IP_ADDRESS

    def find(self, text: str, ctx: Context) -> Iterator[Span]:
        for pattern in (_IPV4, _IPV6):
            for match in pattern.finditer(text):
                try:
                    ipaddress.ip_address(match.group())
                except ValueError:
                    continue
                yield self.span(text, match.start(), match.end())
