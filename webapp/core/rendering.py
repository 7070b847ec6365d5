"""Render untrusted LLM and user text as sanitized HTML.

Pipeline: make control characters visible, parse Markdown with raw HTML off,
rewrite tokens (citations, headings, images), render, sanitize with an nh3
allowlist, then mark safe. Nothing but a ``find`` highlight touches the HTML
after the sanitizer, and it only puts ``<mark>`` around escaped text between
the sanitized tags. The cache is bounded by bytes (``RENDER_CACHE_BYTES``).
"""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import NamedTuple

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup, escape

__all__ = [
    "MARKDOWN_MAX_CHARS",
    "RENDER_CACHE_BYTES",
    "RenderCacheInfo",
    "clear_render_cache",
    "find_citation_markers",
    "render_cache_info",
    "render_markdown",
    "set_render_cache_bytes",
    "visible_text",
]

# Above this size the text is shown escaped in <pre>: parsing is linear but
# slow per character on bomb inputs, so the cap bounds the worst case.
MARKDOWN_MAX_CHARS = 100_000
#: Default bound of the rendered-Markdown cache (RENDER_CACHE_BYTES), per process.
RENDER_CACHE_BYTES = 32 * 1024 * 1024

_ANCHOR_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]*")
# OpenAI-assistant citation markers such as 【4:0†source】. No newline: a
# marker split across lines could never be rewritten at token level.
_MARKER_RE = re.compile(r"【[^】\r\n]{1,200}】")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# Bidi embeddings/overrides (closed by PDF) and isolates (closed by PDI).
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")
_ISOLATES = frozenset("\u2066\u2067\u2068")
_PDF, _PDI = "\u202c", "\u2069"
_CODE_CLASS_RE = re.compile(r"language-[A-Za-z0-9_+-]+")
_FRAGMENT_RE = re.compile(r"#[A-Za-z0-9_-]*")
_HEADING_SHIFT = {"h1": "h4", "h2": "h4", "h3": "h5", "h4": "h6", "h5": "h6"}

_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del",
    "s", "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead",
    "tbody", "tr", "th", "td", "a", "sup", "span", "mark",
}  # fmt: skip
# "*": empty set removes ammonia's default global attributes (lang, title).
_ALLOWED_ATTRIBUTES = {
    "*": set[str](),
    "a": {"href", "title"},
    "code": {"class"},
    "ol": {"start"},
    "sup": {"class"},
}
# Content of these is dropped, not unwrapped. Raw HTML is already off in the
# parser, so this only matters if that ever regresses.
_CLEAN_CONTENT_TAGS = {
    "script", "style", "template", "iframe", "noscript", "object", "embed",
    "svg", "math", "textarea", "title", "xmp", "noembed", "noframes", "select",
}  # fmt: skip


def visible_text(text: str) -> str:
    """Replace control characters and lone surrogates with visible stand-ins.

    Bidi embeddings, overrides and isolates the text leaves open are closed at
    its end, so a field cannot reorder the page text that follows it (a
    ``<title>`` or an ``<option>`` cannot hold a ``<bdi>``).
    """
    if text.isascii() and text.isprintable():
        # Most fields: nothing to replace, and two C-level checks instead of
        # three regex scans (a list page calls this about 150 times). str()
        # so that Markup given here comes back as text, to be escaped.
        return str(text)
    if _SURROGATE_RE.search(text):
        # Round-trip through UTF-16 so valid pairs join and lone halves become
        # U+FFFD; a lone surrogate would otherwise crash the UTF-8 encoder.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _close_bidi(_CONTROL_RE.sub(_control_picture, text))


def _close_bidi(text: str) -> str:
    if _BIDI_RE.search(text) is None:
        return text
    # Mirror UAX #9 (X1-X8): a PDF closes the innermost embedding unless an
    # isolate was opened after it; a PDI closes the innermost isolate and any
    # embeddings inside it; unmatched closers are ignored. Paragraph breaks
    # are not counted as closers: an extra PDF or PDI at the end is harmless.
    closers: list[str] = []
    for match in _BIDI_RE.finditer(text):
        char = match.group()
        if char in _EMBEDDINGS:
            closers.append(_PDF)
        elif char in _ISOLATES:
            closers.append(_PDI)
        elif char == _PDF:
            if closers and closers[-1] == _PDF:
                closers.pop()
        elif _PDI in closers:
            while closers.pop() != _PDI:
                pass
    return text + "".join(reversed(closers))


def _control_picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    # C1 has no control pictures; U+FFFD at least shows something was there.
    return "\ufffd"


def find_citation_markers(text: str) -> list[str]:
    """Return the distinct citation markers in order of first appearance."""
    found = dict.fromkeys(m.group() for m in _MARKER_RE.finditer(visible_text(text)))
    return list(found)


def _inline_text(tokens: list[Token]) -> str:
    parts: list[str] = []
    for token in tokens:
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif token.children:
            parts.append(_inline_text(token.children))
    return "".join(parts)


@dataclass(frozen=True)
class _Citations:
    numbers: dict[str, int]
    anchor_prefix: str
    count: int

    def tokens(self, number: int, in_link: bool) -> list[Token]:
        label = Token("text", "", 0, content=f"[{number}]")
        inner = [label]
        # No link inside a link: nested <a> is invalid and reparses badly.
        if number <= self.count and not in_link:
            href = f"#{self.anchor_prefix}{number}"
            inner = [
                Token("link_open", "a", 1, attrs={"href": href}),
                label,
                Token("link_close", "a", -1),
            ]
        return [
            Token("sup_open", "sup", 1, attrs={"class": "cite"}),
            *inner,
            Token("sup_close", "sup", -1),
        ]

    def split(self, token: Token, in_link: bool) -> list[Token]:
        out: list[Token] = []
        text, pos = token.content, 0
        for match in _MARKER_RE.finditer(text):
            number = self.numbers.get(match.group())
            if number is None:
                # Built from escapes or entities: not a marker in the source.
                continue
            if match.start() > pos:
                out.append(Token("text", "", 0, content=text[pos : match.start()]))
            out.extend(self.tokens(number, in_link))
            pos = match.end()
        if not out:
            return [token]
        if pos < len(text):
            out.append(Token("text", "", 0, content=text[pos:]))
        return out


def _rewrite_inline(children: list[Token], citations: _Citations) -> list[Token]:
    out: list[Token] = []
    link_depth = 0
    for child in children:
        token = child
        if token.type == "image":
            # Images can beacon data out on page load; keep only the alt text.
            token = Token("text", "", 0, content=_inline_text(token.children or []))
        elif token.type == "link_open":
            link_depth += 1
        elif token.type == "link_close":
            link_depth -= 1
        if token.type == "text" and "【" in token.content:
            out.extend(citations.split(token, link_depth > 0))
        else:
            out.append(token)
    return out


def _rewrite_tokens(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            # Message headings must not compete with the page outline.
            token.tag = _HEADING_SHIFT.get(token.tag, "h6")
        elif token.type == "inline" and token.children:
            token.children = _rewrite_inline(token.children, state.env["airisk"])


def _build_markdown() -> MarkdownIt:
    # js-default has html=False; the default "commonmark" preset passes raw HTML.
    md = MarkdownIt("js-default", {"maxNesting": 20, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.disable(["html_block", "html_inline", "linkify"])
    md.core.ruler.push("airisk_rewrite", _rewrite_tokens)
    return md


def _allowed_href(value: str) -> bool:
    lowered = value.lower()
    return (
        lowered.startswith(("https:", "mailto:"))
        or _FRAGMENT_RE.fullmatch(value) is not None
    )


_ATTRIBUTE_CHECKS: dict[tuple[str, str], Callable[[str], bool]] = {
    ("a", "href"): _allowed_href,
    ("a", "title"): lambda value: True,
    ("a", "rel"): lambda value: True,  # set by link_rel itself
    ("code", "class"): lambda value: _CODE_CLASS_RE.fullmatch(value) is not None,
    ("ol", "start"): lambda value: value.isascii() and value.isdigit(),
    ("sup", "class"): lambda value: value == "cite",
}


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # A second, value-level allowlist on top of nh3's name-level one.
    check = _ATTRIBUTE_CHECKS.get((tag, attribute))
    return value if check is not None and check(value) else None


def _relative_url(url: str) -> str | None:
    # Only same-page fragments (citation anchors); drops /logout and //host.
    return url if _FRAGMENT_RE.fullmatch(url) else None


_MARKDOWN = _build_markdown()
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags=_CLEAN_CONTENT_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    url_schemes={"https", "mailto"},
    url_relative=_relative_url,
)
_PLAIN_CLEANER = nh3.Cleaner(
    tags={"pre"},
    clean_content_tags=_CLEAN_CONTENT_TAGS,
    attributes={"*": set(), "pre": {"class"}},
    attribute_filter=lambda tag, attr, value: value if value == "plain" else None,
    strip_comments=True,
    link_rel=None,
    url_schemes=set(),
)


class _RenderCache:
    """Rendered HTML by (text, anchor prefix, citation count), bounded by bytes.

    Entries differ in size by four orders of magnitude (a one-word reply, a
    100,000-character report), so a bound on entries bounds nothing: this
    one counts the bytes of each text and its HTML and drops the least
    recently used entries past the bound. Shared by a worker's threads.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = self.hits = self.misses = 0
        self._entries: OrderedDict[tuple[str, str, int], tuple[Markup, int]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> Markup | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: tuple[str, str, int], html: Markup) -> None:
        size = sys.getsizeof(key[0]) + sys.getsizeof(html) + _ENTRY_OVERHEAD
        with self._lock:
            if size > self.max_bytes or key in self._entries:
                return
            self._entries[key] = (html, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.bytes -= dropped

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max_bytes
            while self._entries and self.bytes > max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = self.hits = self.misses = 0

    def info(self) -> RenderCacheInfo:
        with self._lock:
            return RenderCacheInfo(
                self.hits, self.misses, len(self._entries), self.bytes, self.max_bytes
            )


class RenderCacheInfo(NamedTuple):
    """Hits, misses, entries and bytes of the rendered-Markdown cache."""

    hits: int
    misses: int
    currsize: int
    bytes: int
    max_bytes: int


# Key tuple, dict slot and the two sizes: about this much beside the strings.
_ENTRY_OVERHEAD = 200
_CACHE = _RenderCache(RENDER_CACHE_BYTES)


def _render(text: str, anchor_prefix: str, citation_count: int) -> Markup:
    key = (text, anchor_prefix, citation_count)
    html = _CACHE.get(key)
    if html is None:
        text = visible_text(text)
        numbers = {m: k for k, m in enumerate(find_citation_markers(text), 1)}
        env = {"airisk": _Citations(numbers, anchor_prefix, citation_count)}
        html = Markup(_CLEANER.clean(_MARKDOWN.render(text, env)))
        _CACHE.put(key, html)
    return html


# A tag of the sanitizer's output: it writes every attribute value in double
# quotes with '"' escaped, but may leave '>' raw inside one. Split on it, the
# text is at even indices and the tags at odd ones.
_TAG_SPLIT_RE = re.compile(r'(<[^>"]*(?:"[^"]*"[^>"]*)*>)')


def _highlight(html: Markup, needle: str) -> Markup:
    """Wrap each case-insensitive match of ``needle`` in the text of ``html``.

    Works on the sanitized HTML's text between tags (not inside code, which
    shows the text verbatim), so a new ``find`` costs one pass over cached
    HTML instead of a Markdown parse. Tags are kept as they are; only text
    with a match is unescaped, split and escaped again around ``<mark>``, so
    the result is what the sanitizer would let through (a test checks that
    sanitizing it again changes nothing).
    """
    target = needle.casefold()
    parts = _TAG_SPLIT_RE.split(html)
    in_code = changed = False
    for index in range(0, len(parts), 2):
        if index:
            tag = parts[index - 1]
            if tag.startswith(("<code>", "<code ")):
                in_code = True
            elif tag == "</code>":
                in_code = False
        if in_code or not parts[index]:
            continue
        marked = _mark_text(parts[index], target)
        if marked is not None:
            parts[index] = marked
            changed = True
    return Markup("".join(parts)) if changed else html


def _mark_text(segment: str, target: str) -> str | None:
    """Return escaped ``segment`` with ``<mark>`` around matches, or None."""
    text = unescape(segment) if "&" in segment else segment
    folded = text.casefold()
    if len(folded) != len(text) or target not in folded:
        # (casefold can change the length, e.g. "ß": then offsets would lie.)
        return None
    out: list[str] = []
    pos = 0
    while (start := folded.find(target, pos)) != -1:
        end = start + len(target)
        out += [escape(text[pos:start]), "<mark>", escape(text[start:end]), "</mark>"]
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def _render_plain(text: str) -> Markup:
    html = f'<pre class="plain">{escape(visible_text(text))}</pre>'
    return Markup(_PLAIN_CLEANER.clean(html))


def render_markdown(
    text: str, *, anchor_prefix: str, citation_count: int, find: str = ""
) -> Markup:
    """Render untrusted Markdown to sanitized HTML with numbered citation refs.

    ``find`` marks every case-insensitive match in the text with ``<mark>``
    (not inside code, whose text markdown-it renders verbatim).

    :raises ValueError: if ``anchor_prefix`` is not ``[A-Za-z0-9_-]*``.
    """
    if _ANCHOR_PREFIX_RE.fullmatch(anchor_prefix) is None:
        raise ValueError("anchor_prefix must match [A-Za-z0-9_-]*")
    if len(text) > MARKDOWN_MAX_CHARS:
        # Not cached: cheap to redo, and caching megabyte keys would let a few
        # huge messages hold most of the cache's memory.
        return _render_plain(text)
    rendered = _render(text, anchor_prefix, citation_count)
    return _highlight(rendered, find) if find else rendered


def set_render_cache_bytes(max_bytes: int) -> None:
    """Bound the rendered-Markdown cache to ``max_bytes`` (0: keep nothing)."""
    _CACHE.resize(max_bytes)


def clear_render_cache() -> None:
    """Empty the rendered-Markdown cache."""
    _CACHE.clear()


def render_cache_info() -> RenderCacheInfo:
    """Return hits, misses, entries and bytes of the rendered-Markdown cache."""
    return _CACHE.info()
