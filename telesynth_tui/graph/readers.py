"""Read input files safely (size, binary, encoding checks); Markdown, text, HTML and PDF."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import warnings
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

KINDS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".csv": "triples",
    ".jsonl": "jsonl",
    ".toml": "formulas",
}
DOCUMENT_KINDS = {"markdown", "text", "html", "pdf"}


class ReadError(Exception):
    """A file that cannot be read; `line` points at the problem where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class RawFile:
    path: Path
    kind: str
    data: bytes
    content_hash: str


def kind_of(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, at most `max_bytes`: the real file type and size are checked on
    the opened file (a symlink to a device or a FIFO is refused, never read), and reading stops
    past the limit even if the file grows."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except PermissionError:
        raise ReadError("permission denied") from None
    except IsADirectoryError:
        raise ReadError("is a directory") from None
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ReadError("is a directory")
        if not stat.S_ISREG(info.st_mode):
            what = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or special file"
            raise ReadError(f"is {what}, not a regular file")
        if info.st_size > max_bytes:
            raise ReadError(
                f"file is {info.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                "(raise ingest.max_file_mb in telesynth.toml to allow it)"
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ReadError(f"file grew past the {max_bytes / 1e6:.0f} MB limit while reading")
        return data
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_raw(path: Path, kind: str, max_bytes: int) -> RawFile:
    """Read a file's bytes, refusing unreadable, special, empty, oversized and (for text) binary
    files."""
    data = read_bounded(path, max_bytes)
    if not data.strip():
        raise ReadError("empty file")
    if kind != "pdf" and b"\x00" in data[:65536]:
        raise ReadError("binary file (NUL bytes), not text")
    return RawFile(path, kind, data, hashlib.sha256(data).hexdigest())


def decode_utf8(raw: RawFile) -> str:
    try:
        text = raw.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.data.count(b"\n", 0, exc.start) + 1
        raise ReadError(f"not valid UTF-8 (byte 0x{raw.data[exc.start]:02x})", line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- HTML ------------------------------------------------------------------------------------


class _HtmlToMarkdown(HTMLParser):
    """Keep headings, paragraphs, list items and tables; drop scripts, styles and navigation."""

    _SKIP: ClassVar[set[str]] = {"script", "style", "nav", "noscript", "template"}
    _BLOCK: ClassVar[set[str]] = {
        "p",
        "div",
        "section",
        "article",
        "li",
        "br",
        "pre",
        "blockquote",
        "dd",
        "dt",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table_rows = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._text.append("#" * int(tag[1]) + " ")
        elif tag == "table":
            self._flush()
            self._table_rows = 0
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in self._BLOCK:
            if self._cell is not None:
                self._cell.append(" ")
            else:
                self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) or (tag in self._BLOCK and self._cell is None):
            self._flush()
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()).replace("|", "/"))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(self._row):
                self.out.append("| " + " | ".join(self._row) + " |")
                if self._table_rows == 0:
                    self.out.append("|" + "---|" * len(self._row))
                self._table_rows += 1
            self._row = None
        elif tag == "table":
            self.out.append("")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        elif self._cell is not None:
            self._cell.append(data)
        else:
            self._text.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        if text and text.strip("# "):
            self.out.extend([text, ""])
        self._text = []

    def markdown(self) -> str:
        self._flush()
        return "\n".join(self.out)


def html_to_markdown(html: str) -> tuple[str, str]:
    """(title, Markdown) of an HTML page."""
    parser = _HtmlToMarkdown()
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), parser.markdown()


# --- PDF -------------------------------------------------------------------------------------


def pdf_to_text(raw: RawFile) -> tuple[str, str]:
    """(title, text) of a PDF; each page becomes a section so chunks keep their page."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    pypdf_log = logging.getLogger("pypdf")
    handler = logging.NullHandler()
    saved = pypdf_log.propagate
    pypdf_log.addHandler(handler)  # pypdf's warnings would print before our one-line answer
    pypdf_log.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(raw.data), strict=False)
            if reader.is_encrypted:
                raise ReadError("encrypted PDF")
            pages = [page.extract_text() or "" for page in reader.pages]
            title = str(reader.metadata.get("/Title") or "").strip() if reader.metadata else ""
    except ReadError:
        raise
    except (
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        OSError,
        AttributeError,
        IndexError,
        ZeroDivisionError,
        RecursionError,
    ) as exc:
        raise ReadError(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    finally:
        pypdf_log.removeHandler(handler)
        pypdf_log.propagate = saved
    parts = [f"## Page {n}\n\n{text.strip()}" for n, text in enumerate(pages, 1) if text.strip()]
    if not parts:
        raise ReadError("PDF has no extractable text (scanned images need OCR)")
    return title, "\n\n".join(parts)


_HTML_TABLE_RE = re.compile(r"<table\b.*?</table\s*>", re.IGNORECASE | re.DOTALL)
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


def normalize_markdown(text: str) -> str:
    """Markdown as converters export it: embedded HTML tables become pipe tables, <br> a space."""
    text = _HTML_TABLE_RE.sub(lambda m: "\n" + html_to_markdown(m.group())[1] + "\n", text)
    return _BR_RE.sub(" ", text)


def plain_text_to_markdown(text: str) -> str:
    """Plain text has no headings syntax; keep its paragraphs and escape stray '#' lines."""
    return re.sub(r"^(\s*)#", r"\1\\#", text, flags=re.MULTILINE)
