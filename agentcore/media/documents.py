"""Documents as pages of text: PDF (pypdf), DOCX (its XML, read with zip-bomb limits), text
and Markdown; and pages as archival passages.

pypdf and defusedxml are imported on the first document (pypdf alone takes longer to import than
the bot takes to start). ``open_document`` is quick (it checks the file and counts its pages)
and runs before the turn,
so a broken, encrypted or text-less file gets its one sentence at once; ``Document.pages``
extracts the text of a range of pages, for the background reading. Both block: run them in a
thread. Formats without pages (DOCX, text) are cut into parts of about ``PART_CHARS``
characters at paragraph breaks; a part is numbered like a page.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)

PART_CHARS = 3000  # a "page" of a document that has none
TEXT_PROBE_PAGES = 5  # a PDF whose first pages hold no text at all is taken for a scan
MAX_XML_BYTES = 64 * 2**20  # a DOCX's text unpacked, at most (a zip bomb stops here)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


class DocumentRefused(Exception):
    """The document cannot be read; the message is one sentence for the person."""


class Document(Protocol):
    page_count: int
    unit: str  # what its numbered parts are called: "page" or "part"

    def pages(self, start: int, end: int) -> list[str]:
        """The text of pages ``start``..``end - 1`` (0-based)."""
        ...


def open_document(data: bytes, filename: str, mime_type: str, max_pages: int) -> Document:
    """The document, checked: ``DocumentRefused`` (one sentence for the person) if it is not
    one we can read, is broken or encrypted, has no text, or has more than ``max_pages``."""
    kind = _format(filename, mime_type)
    document: Document
    if kind == "pdf":
        document = _PdfDocument.open(data, filename)
    elif kind == "docx":
        document = _PartsDocument(_docx_text(data, filename))
    else:
        document = _PartsDocument(_decode(data))
    if document.page_count == 0:
        raise DocumentRefused(f"I found no text in {filename}.")
    if document.page_count > max_pages:
        raise DocumentRefused(
            f"{filename} has {document.page_count} {document.unit}s; I can read documents of "
            f"up to {max_pages}."
        )
    return document


def unit_of(filename: str) -> str:
    """What a document's numbered parts are called, from its name: pages of a PDF, else
    parts (see ``_PartsDocument``)."""
    return "page" if filename.lower().endswith(".pdf") else "part"


def _format(filename: str, mime_type: str) -> str:
    name = filename.lower()
    if mime_type == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if mime_type == _DOCX_TYPE or name.endswith(".docx"):
        return "docx"
    return "text"


class _PdfDocument:
    unit = "page"

    def __init__(self, reader: pypdf.PdfReader, filename: str) -> None:
        self._reader = reader
        self._filename = filename
        self.page_count = len(reader.pages)

    @classmethod
    def open(cls, data: bytes, filename: str) -> _PdfDocument:
        import pypdf  # noqa: PLC0415  (heavy: only once a PDF arrives)
        from pypdf.errors import PyPdfError  # noqa: PLC0415

        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not _unlocked(reader):
                raise _protected(filename)
            document = cls(reader, filename)
            probe = document.pages(0, min(TEXT_PROBE_PAGES, document.page_count))
        except DocumentRefused:
            raise
        except NotImplementedError as exc:
            # pypdf's answer, as it opens the file, to an encryption scheme it does not read
            # (public-key, an unknown /V): as unreadable as a file with a real password.
            log.info("cannot read a PDF: %s", exc)
            raise _protected(filename) from exc
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            log.info("cannot read a PDF: %s: %s", type(exc).__name__, exc)
            raise DocumentRefused(
                f"{filename} seems to be damaged, so I couldn't read it."
            ) from exc
        if document.page_count and not any(text.strip() for text in probe):
            raise DocumentRefused(
                f"{filename} has no text I can read: it looks like scanned pages (images of "
                "text). Please send a version with selectable text."
            )
        return document

    def pages(self, start: int, end: int) -> list[str]:
        from pypdf.errors import PyPdfError  # noqa: PLC0415

        texts = []
        for number in range(start, end):
            try:
                texts.append(_tidy(self._reader.pages[number].extract_text() or ""))
            except (
                PyPdfError,
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
                NotImplementedError,  # pypdf: a stream filter it does not decode
            ) as exc:
                # One bad page does not spoil the document.
                log.info("page %d of a PDF has no readable text: %s", number + 1, exc)
                texts.append("")
        return texts


def _unlocked(reader: pypdf.PdfReader) -> bool:
    """Many PDFs are encrypted with an empty password only to restrict printing or copying."""
    import pypdf  # noqa: PLC0415
    from pypdf.errors import DependencyError, PyPdfError  # noqa: PLC0415

    try:
        return reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except (DependencyError, PyPdfError):
        return False


def _protected(filename: str) -> DocumentRefused:
    return DocumentRefused(
        f"{filename} is protected with a password, so I can't read it; please send a copy "
        "without the password."
    )


class _PartsDocument:
    """A text without pages, cut into numbered parts."""

    unit = "part"

    def __init__(self, text: str) -> None:
        self._parts = split_text(text, PART_CHARS)
        self.page_count = len(self._parts)

    def pages(self, start: int, end: int) -> list[str]:
        return self._parts[start:end]


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text:
            return _tidy(text)
    return _tidy(data.decode("latin-1"))


def _docx_text(data: bytes, filename: str) -> str:
    """The paragraphs of a DOCX's main part. Its declared and its actual unpacked size are
    both capped, and the XML is parsed without entities (no billion laughs)."""
    from defusedxml import ElementTree  # noqa: PLC0415
    from defusedxml.common import DefusedXmlException  # noqa: PLC0415

    broken = DocumentRefused(f"{filename} doesn't look like a Word document I can read.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > MAX_XML_BYTES:
                raise _too_big(filename)
            with archive.open(info) as member:
                xml = member.read(MAX_XML_BYTES + 1)  # the real size, whatever was declared
            if len(xml) > MAX_XML_BYTES:
                raise _too_big(filename)
            root = ElementTree.fromstring(xml)
    except DocumentRefused:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError) as exc:
        raise broken from exc
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise broken from exc
    paragraphs = [
        "".join(node.text or "" for node in paragraph.iter(f"{_W}t"))
        for paragraph in root.iter(f"{_W}p")
    ]
    return _tidy("\n\n".join(p for p in paragraphs if p.strip()))


def _too_big(filename: str) -> DocumentRefused:
    return DocumentRefused(f"{filename} unpacks to far more text than I can read.")


def _tidy(text: str) -> str:
    """Text as stored: NULs and carriage returns gone, runs of blank lines made one."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most about ``max_chars``, cut at paragraph breaks, else at
    sentence ends, else at spaces (a single longer word is cut where it must be)."""
    pieces: list[str] = []
    current = ""
    for paragraph in _PARAGRAPH_BREAK.split(text.strip()):
        for unit in _units(paragraph.strip(), max_chars):
            if current and len(current) + 2 + len(unit) > max_chars:
                pieces.append(current)
                current = unit
            else:
                current = f"{current}\n\n{unit}" if current else unit
    if current:
        pieces.append(current)
    return pieces


def _units(paragraph: str, max_chars: int) -> Sequence[str]:
    """A paragraph, or its sentences (or words) if it is longer than ``max_chars``."""
    if len(paragraph) <= max_chars:
        return [paragraph] if paragraph else []
    units: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        rest = sentence
        while len(rest) > max_chars:
            cut = rest.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            units.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        if rest:
            units.append(rest)
    return _joined(units, max_chars)


def _joined(units: list[str], max_chars: int) -> list[str]:
    """Neighbouring sentences put back together up to ``max_chars``."""
    joined: list[str] = []
    for unit in units:
        if joined and len(joined[-1]) + 1 + len(unit) <= max_chars:
            joined[-1] += " " + unit
        else:
            joined.append(unit)
    return joined


@dataclass(frozen=True, slots=True)
class PagePassage:
    page: int  # 1-based
    content: str


def page_passages(texts: Sequence[str], first_page: int, max_chars: int) -> list[PagePassage]:
    """The passages of consecutive pages (``first_page`` is the 1-based number of
    ``texts[0]``): a page as one passage, or several if it is longer than ``max_chars``."""
    return [
        PagePassage(first_page + i, piece)
        for i, text in enumerate(texts)
        for piece in split_text(text, max_chars)
    ]
