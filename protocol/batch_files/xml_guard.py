"""Refusals made on the raw bytes, before any XML parser sees them.

The standard library parser expands internal entities and offers no switch to
forbid DTDs, so a document with any declaration is refused outright: that
closes entity expansion ("billion laughs") and external entities at once.
The byte scan is sound only for an ASCII-compatible encoding, hence UTF-8 only
(ISO 20022 messages are UTF-8): NUL bytes (UTF-16/32) and other declared
encodings are refused too.
"""

import re

__all__ = ["MAX_BYTES", "refusal"]

MAX_BYTES = 512 * 2**20
_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']")
_UTF8 = ("utf-8", "utf8")


def refusal(content: bytes, max_bytes: int = MAX_BYTES) -> str | None:
    """Why `content` must not be parsed, or None."""
    if len(content) > max_bytes:
        return f"document is {len(content)} bytes, more than the limit of {max_bytes}"
    if b"\x00" in content:
        return "document contains NUL bytes: only UTF-8 XML is accepted"
    declared = _DECLARED_ENCODING.match(content, 0, 1024)
    encoding = declared[1][:40].decode("ascii", "replace") if declared else "UTF-8"
    if encoding.lower() not in _UTF8:
        return f"encoding {encoding!r} refused: only UTF-8 XML is accepted"
    if _has_declaration(content):
        return "DOCTYPE/ENTITY declarations are refused (entity expansion, external entities)"
    return None


def _has_declaration(content: bytes) -> bool:
    """Any `<!` that does not open a comment or CDATA section: DOCTYPE, ENTITY, ELEMENT, ..."""
    start = content.find(b"<!")
    while start != -1:
        if not (content.startswith(b"<!--", start) or content.startswith(b"<![CDATA[", start)):
            return True
        start = content.find(b"<!", start + 2)
    return False
