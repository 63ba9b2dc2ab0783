"""Chunk a document along its own structure: headings (Markdown ``#`` and the Chinese clause forms 第一章 /
第一节 / 一、 / （一） / 1. / 1.1), then sentences, packed up to ``max_chars`` with one sentence of overlap.
Each chunk keeps its section path and its character span in the document text."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 360
_HEADINGS = (
    (re.compile(r"^(#{1,6})\s+(.+)$"), None),
    (re.compile(r"^(第[一二三四五六七八九十百零\d]+章)\s*(.*)$"), 1),
    (re.compile(r"^(第[一二三四五六七八九十百零\d]+节)\s*(.*)$"), 2),
    (re.compile(r"^([一二三四五六七八九十]+、)\s*(.{1,40})$"), 2),
    (re.compile(r"^(（[一二三四五六七八九十]+）)\s*(.{1,40})$"), 3),
    (re.compile(r"^(\d+\.\d+(?:\.\d+)*)\s+(.{1,40})$"), 4),
)
_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?|\n")


@dataclass(frozen=True)
class Piece:
    section: str
    start: int
    end: int
    text: str


def _heading(line: str) -> tuple[int, str] | None:
    stripped = line.strip()
    if not stripped or len(stripped) > 60:
        return None
    for pattern, level in _HEADINGS:
        match = pattern.match(stripped)
        if match:
            if level is None:
                return len(match.group(1)), match.group(2).strip()
            title = (match.group(1) + " " + match.group(2)).strip()
            return level, title
    return None


def chunk_text(text: str, max_chars: int = MAX_CHARS) -> list[Piece]:
    pieces: list[Piece] = []
    path: list[tuple[int, str]] = []
    position = 0
    body: list[tuple[int, int]] = []  # (start, end) of body lines in this section

    def flush() -> None:
        if not body:
            return
        start, end = body[0][0], body[-1][1]
        pieces.extend(_pack(text, start, end, " > ".join(t for _, t in path), max_chars))
        body.clear()

    for line in text.splitlines(keepends=True):
        head = _heading(line)
        if head is not None:
            flush()
            level, title = head
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, title))
        elif line.strip():
            body.append((position, position + len(line.rstrip("\n"))))
        position += len(line)
    flush()
    return pieces


def _pack(text: str, start: int, end: int, section: str, max_chars: int) -> list[Piece]:
    sentences = [
        (start + m.start(), start + m.end()) for m in _SENTENCE.finditer(text[start:end]) if m.group().strip()
    ]
    pieces: list[Piece] = []
    current: list[tuple[int, int]] = []
    for sentence in sentences:
        if current and sentence[1] - current[0][0] > max_chars:
            pieces.append(_piece(text, section, current[0][0], current[-1][1]))
            current = current[-1:] if current[-1][1] - current[-1][0] < max_chars // 2 else []
        current.append(sentence)
    if current:
        pieces.append(_piece(text, section, current[0][0], current[-1][1]))
    return [p for p in pieces if p.text]


def _piece(text: str, section: str, start: int, end: int) -> Piece:
    """Trim surrounding whitespace and keep the span exact: ``text[start:end] == piece.text``."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Piece(section, start, end, text[start:end])
