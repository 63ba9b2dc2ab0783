"""Read TXT, Markdown, HTML, DOCX and PDF (text layer) into plain text with their headings marked, in UTF-8
or GB18030. Every failure is a per-document error with a reason; nothing is half-read."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from medfusion.errors import InvalidInput

SUPPORTED = (".txt", ".md", ".markdown", ".html", ".htm", ".docx", ".pdf")


class DocumentError(InvalidInput):
    code = "document_unreadable"


def decode(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise DocumentError.for_field(name, "无法识别的编码 not UTF-8 or GB18030 text")


class _HtmlText(HTMLParser):
    """Headings become Markdown '#' lines so chunking sees the structure; scripts and styles are dropped."""

    _BLOCK = frozenset({"p", "div", "li", "tr", "br", "section", "article", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()
        elif not self._skip:
            self.parts.append(data)


def max_bytes() -> int:
    """The largest document read (``MEDFUSION_KB_UPLOAD_MAX_BYTES``, default 200 MB: guideline PDFs)."""
    from medfusion.settings import get_settings

    return get_settings().kb_upload_max_bytes


def read_document(path: Path) -> tuple[str, str]:
    """(title, text). Headings in the text are Markdown ``#`` lines whatever the input format."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise DocumentError.for_field(str(path), f"不支持的格式 unsupported format {suffix or '(none)'}")
    size = path.stat().st_size
    if size == 0:
        raise DocumentError.for_field(str(path), "空文档 empty document")
    if size > (limit := max_bytes()):
        raise DocumentError.for_field(str(path), f"文档过大 over the limit of {limit:,} bytes")
    title = path.stem
    if suffix == ".pdf":
        text = _pdf(path)
    elif suffix == ".docx":
        text = _docx(path)
    else:
        raw = decode(path.read_bytes(), str(path))
        if suffix in (".html", ".htm"):
            parser = _HtmlText()
            parser.feed(raw)
            title = parser.title or title
            text = "".join(parser.parts)
        else:
            text = raw
    text = re.sub(r"[ \t\u3000]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text:
        raise DocumentError.for_field(str(path), "文档没有文本 no text (a scanned PDF needs OCR first)")
    first_heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    if first_heading and title == path.stem:
        title = first_heading.group(1).strip()
    return title, text


def _pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise DocumentError.for_field(str(path), f"PDF 已损坏 corrupt PDF: {type(exc).__name__}") from None


def _docx(path: Path) -> str:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
        raise DocumentError.for_field(str(path), f"DOCX 已损坏 corrupt DOCX: {type(exc).__name__}") from None
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = re.search(r"Heading (\d)|标题 ?(\d)", style)
        if level:
            lines.append("#" * int(level.group(1) or level.group(2)) + " " + paragraph.text)
        else:
            lines.append(paragraph.text)
    return "\n".join(lines)
