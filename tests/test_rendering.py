"""Tests for webapp.core.rendering: sanitized Markdown for untrusted text."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import Markup

from webapp import create_app
from webapp.core.rendering import (
    MARKDOWN_MAX_CHARS,
    RENDER_CACHE_BYTES,
    clear_render_cache,
    find_citation_markers,
    render_cache_info,
    render_markdown,
    set_render_cache_bytes,
    visible_text,
)
from webapp.demo_api.hostile import FAMILIES, _ai_text

VOID_TAGS = {"br", "hr", "img", "input", "meta", "base", "link", "source", "wbr"}
# What may appear in sanitized output, tag -> attributes.
ALLOWED: dict[str, set[str]] = {
    tag: set()
    for tag in (
        "p br hr h1 h2 h3 h4 h5 h6 strong em del s code pre blockquote ul ol li "
        "table thead tbody tr th td span mark"
    ).split()
} | {
    "a": {"href", "title", "rel"},
    "code": {"class"},
    "ol": {"start"},
    "pre": {"class"},  # only the plain-text fallback's class="plain"
    "sup": {"class"},
}
REL = "noopener noreferrer nofollow"


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        """Yield this node and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str) -> list[Node]:
        return [node for node in self.iter() if node.tag == tag]

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def render(text: str, prefix: str = "m1-c", count: int = 0) -> Node:
    html = render_markdown(text, anchor_prefix=prefix, citation_count=count)
    assert isinstance(html, Markup)
    return assert_sanitized(html)


def assert_sanitized(html: str) -> Node:
    """Parse html and check every element and attribute against the allowlist."""
    root = parse(html)
    for node in list(root.iter())[1:]:
        assert node.tag in ALLOWED, node.tag
        assert set(node.attrs) <= ALLOWED[node.tag], (node.tag, node.attrs)
        href = node.attrs.get("href")
        if href is not None:
            assert re.match(r"(?i)(https:|mailto:|#[A-Za-z0-9_-]*$)", href), href
        if node.tag == "a":
            assert node.attrs.get("rel") == REL
        if node.tag in ("pre", "sup") and "class" in node.attrs:
            assert node.attrs["class"] == {"pre": "plain", "sup": "cite"}[node.tag]
        if node.tag == "code" and "class" in node.attrs:
            assert re.fullmatch(r"language-[A-Za-z0-9_+-]+", node.attrs["class"] or "")
    return root


def hrefs(root: Node) -> list[str | None]:
    return [a.attrs.get("href") for a in root.find_all("a")]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_render_cache()


def test_markdown_features_render() -> None:
    text = (
        "Intro with `inline` and ~~gone~~.\n\n"
        "```python\nprint('hi')\n```\n\n"
        "- one\n- two\n\n"
        "| a | b |\n|:--|--:|\n| 1 | 2 |\n\n"
        "[docs](https://docs.example/x)\n\n"
        "> quoted\n"
    )
    root = render(text)
    (pre,) = root.find_all("pre")
    (code,) = pre.find_all("code")
    assert code.attrs == {"class": "language-python"}
    assert code.text == "print('hi')\n"
    assert [li.text for li in root.find_all("li")] == ["one", "two"]
    assert [c.text for c in root.find_all("th") + root.find_all("td")] == list("ab12")
    # Alignment comes as style="text-align:..."; the sanitizer drops it.
    assert all(not cell.attrs for cell in root.find_all("th") + root.find_all("td"))
    (link,) = root.find_all("a")
    assert link.attrs == {"href": "https://docs.example/x", "rel": REL}
    assert [s.text for s in root.find_all("s")] == ["gone"]
    assert root.find_all("blockquote")[0].text.strip() == "quoted"


def test_unsafe_code_language_loses_class() -> None:
    root = render('```py"onmouseover=alert(1)\nx\n```')
    (code,) = root.find_all("code")
    assert code.attrs == {}


@pytest.mark.parametrize(
    "raw",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        '<iframe src="https://evil.example"></iframe>',
        '<form action="https://evil.example"><input name="t"></form>',
        '<base href="https://evil.example/">',
        '<meta http-equiv="refresh" content="0;url=https://evil.example">',
        '<a href="javascript:alert(1)">x</a>',
        "<!-- comment --><style>*{}</style>",
    ],
)
@pytest.mark.parametrize("layout", ["{}", "text {} text", "> {}", "- {}"])
def test_raw_html_is_shown_as_text(raw: str, layout: str) -> None:
    root = render(layout.format(raw))
    assert raw in root.text
    assert hrefs(root) == []


DANGEROUS_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "%6Aavascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "http://evil.example/",
    "//evil.example/",
    "/logout",
    "logout",
    " javascript:alert(1)",
    "<javascript:alert(1)>",
]


@pytest.mark.parametrize("url", DANGEROUS_URLS)
@pytest.mark.parametrize(
    "template", ["[click]({})", "![click]({})", "[click][r]\n\n[r]: {}"]
)
def test_dangerous_link_targets_lose_href(url: str, template: str) -> None:
    root = render(template.format(url))
    assert hrefs(root) == [None] * len(root.find_all("a"))
    assert "click" in root.text


@pytest.mark.parametrize("text", ["<http://evil.example>", "<javascript:alert(1)>"])
def test_autolinks_to_unsafe_targets_lose_href(text: str) -> None:
    assert all(href is None for href in hrefs(render(text)))


@pytest.mark.parametrize(
    "text",
    [
        "![x](https://evil.example/p.png)",
        '![x](https://evil.example/p.png "title")',
        "![x][img]\n\n[img]: https://evil.example/p.png",
        "[![x](https://evil.example/p.png)](https://ok.example)",
    ],
)
def test_images_render_as_alt_text_only(text: str) -> None:
    root = render(text)
    assert root.find_all("img") == []
    assert "evil.example" not in render_markdown(
        text, anchor_prefix="", citation_count=0
    )
    assert "x" in root.text


def test_image_alt_keeps_text_of_nested_markup() -> None:
    root = render("![a *b* [c](https://x.example)](https://evil.example/p.png)")
    assert root.find_all("img") == root.find_all("a") == []
    assert root.text.strip() == "a b c"


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("[site](https://ok.example/a?b=1)", "https://ok.example/a?b=1"),
        ("<https://ok.example/>", "https://ok.example/"),
        ("[mail](mailto:sec@ok.example)", "mailto:sec@ok.example"),
        ("<sec@ok.example>", "mailto:sec@ok.example"),
        ("[top](#m2-c1)", "#m2-c1"),
    ],
)
def test_safe_links_keep_href_and_get_rel(text: str, href: str) -> None:
    (link,) = render(text).find_all("a")
    assert link.attrs == {"href": href, "rel": REL}


def cites(root: Node) -> list[tuple[str, str | None]]:
    out = []
    for sup in root.find_all("sup"):
        assert sup.attrs == {"class": "cite"}
        links = sup.find_all("a")
        out.append((sup.text, links[0].attrs["href"] if links else None))
    return out


def test_citation_reference_html_shape() -> None:
    html = render_markdown(
        "See 【4:0†source】.", anchor_prefix="m7-c", citation_count=1
    )
    assert html == (
        '<p>See <sup class="cite"><a href="#m7-c1" rel="noopener noreferrer '
        'nofollow">[1]</a></sup>.</p>\n'
    )


def test_citations_number_by_first_appearance() -> None:
    text = "A【12:3†policy.pdf】 B【4:0†source】 C【12:3†policy.pdf】 D【9:9†x】"
    root = render(text, prefix="p", count=2)
    assert cites(root) == [
        ("[1]", "#p1"),
        ("[2]", "#p2"),
        ("[1]", "#p1"),
        ("[3]", None),
    ]
    assert "【" not in root.text
    assert find_citation_markers(text) == [
        "【12:3†policy.pdf】",
        "【4:0†source】",
        "【9:9†x】",
    ]


def test_citations_without_sources_are_unlinked() -> None:
    root = render("x【1†a】 y【2†b】", count=0)
    assert cites(root) == [("[1]", None), ("[2]", None)]
    assert root.find_all("a") == []


def test_citations_in_code_stay_literal() -> None:
    text = "`【1†a】`\n\n```\n【2†b】\n```\n\n    【3†c】\n\nprose 【1†a】"
    root = render(text, count=3)
    assert [c.text for c in root.find_all("code")] == [
        "【1†a】",
        "【2†b】\n",
        "【3†c】\n",
    ]
    # Numbering follows find_citation_markers, which counts the whole text.
    assert cites(root) == [("[1]", "#m1-c1")]


def test_citation_inside_link_is_not_a_nested_link() -> None:
    root = render("[see 【1†a】](https://ok.example)", count=1)
    (link,) = root.find_all("a")
    assert link.attrs["href"] == "https://ok.example"
    assert cites(root) == [("[1]", None)]


def test_marker_limits() -> None:
    long_marker = "【" + "x" * 201 + "】"
    assert find_citation_markers(long_marker) == []
    assert find_citation_markers("【" + "x" * 200 + "】") == ["【" + "x" * 200 + "】"]
    assert find_citation_markers("【】 【a\nb】") == []
    assert cites(render(long_marker, count=5)) == []


@pytest.mark.parametrize("prefix", ["", "m1-c", "A_z-9"])
def test_valid_anchor_prefix(prefix: str) -> None:
    assert hrefs(render("【1†a】", prefix=prefix, count=1)) == [f"#{prefix}1"]


@pytest.mark.parametrize(
    "prefix", ['"', "a b", "x\n", "a#b", "<", "é", "m1/../", "x'onclick="]
)
def test_invalid_anchor_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        render_markdown("【1†a】", anchor_prefix=prefix, citation_count=1)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("# t", "h4"),
        ("## t", "h4"),
        ("### t", "h5"),
        ("#### t", "h6"),
        ("##### t", "h6"),
        ("###### t", "h6"),
        ("t\n=", "h4"),
        ("t\n-", "h4"),
    ],
)
def test_headings_are_shifted_down(text: str, tag: str) -> None:
    root = render(text)
    assert [n.tag for n in list(root.iter())[1:]] == [tag]


def test_control_characters_become_visible() -> None:
    text = "a\x00b\x01c\x1bd\x7fe\x85f\x9fg\th\n"
    expected = "a\u2400b\u2401c\u241bd\u2421e\ufffdf\ufffdg\th\n"
    assert visible_text(text) == expected
    root = render(f"```\n{text}```")
    assert root.find_all("code")[0].text == expected
    html = render_markdown(f"p {text}", anchor_prefix="", citation_count=0)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", html)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a\ud800b", "a\ufffdb"), ("\udfff", "\ufffd"), ("x\ud83d", "x\ufffd")],
)
def test_lone_surrogates_become_replacement_characters(
    text: str, expected: str
) -> None:
    assert visible_text(text) == expected
    for html in (
        render_markdown(text, anchor_prefix="", citation_count=0),
        render_markdown(f"`{text}`", anchor_prefix="", citation_count=0),
        render_markdown(text * MARKDOWN_MAX_CHARS, anchor_prefix="", citation_count=0),
    ):
        assert expected in html
        html.encode("utf-8")


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_in_ascii_text(code: int) -> None:
    # Plain ASCII takes a fast path: it must still catch every control.
    char = chr(code)
    if code in (0x09, 0x0A, 0x0D):
        shown = char
    elif code < 0x20:
        shown = chr(0x2400 + code)
    elif code == 0x7F:
        shown = "\u2421"
    else:
        shown = char
    assert visible_text(f"ab{char}cd") == f"ab{shown}cd"


def test_surrogate_pair_is_joined() -> None:
    assert visible_text("\ud83d\ude00") == "\U0001f600"


def test_visible_text_escapes_nothing_and_is_not_markup() -> None:
    result = visible_text("<b>&amp; \"'")
    assert type(result) is str
    assert type(visible_text(Markup("<b>x</b>"))) is str, "Markup comes back as text"
    assert result == "<b>&amp; \"'"


def test_long_text_falls_back_to_escaped_plain_text() -> None:
    text = "# <script>x</script> **b** 【1†a】 \x00\n" * (MARKDOWN_MAX_CHARS // 30)
    assert len(text) > MARKDOWN_MAX_CHARS
    html = render_markdown(text, anchor_prefix="p", citation_count=1)
    assert isinstance(html, Markup)
    root = parse(html)
    (pre,) = list(root.iter())[1:]
    assert (pre.tag, pre.attrs) == ("pre", {"class": "plain"})
    assert pre.text == visible_text(text)


def test_text_at_the_cap_is_still_markdown() -> None:
    text = "**b**" + "x" * (MARKDOWN_MAX_CHARS - 5)
    assert render(text).find_all("strong")


def test_render_is_cached_per_input() -> None:
    first = render_markdown("**hi**", anchor_prefix="a", citation_count=1)
    assert render_markdown("**hi**", anchor_prefix="a", citation_count=1) is first
    assert render_cache_info().hits == 1
    render_markdown("**hi**", anchor_prefix="b", citation_count=1)
    render_markdown("**hi**", anchor_prefix="a", citation_count=2)
    assert render_cache_info().currsize == 3


def test_render_cache_is_bounded_by_bytes() -> None:
    limit = 1024 * 1024
    set_render_cache_bytes(limit)
    try:
        for n in range(60):
            # About 60 KB of text each: 60 of them are 3.6 MB plus their HTML.
            render_markdown(
                f"{n} " + "word " * 12_000, anchor_prefix="", citation_count=0
            )
            info = render_cache_info()
            assert 0 < info.bytes <= info.max_bytes == limit
        assert render_cache_info().currsize < 60
        # The newest entry is kept, the oldest was dropped.
        before = render_cache_info().hits
        render_markdown("59 " + "word " * 12_000, anchor_prefix="", citation_count=0)
        assert render_cache_info().hits == before + 1
    finally:
        set_render_cache_bytes(RENDER_CACHE_BYTES)


def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    set_render_cache_bytes(10_000)
    try:
        render_markdown("x" * 20_000, anchor_prefix="", citation_count=0)
        assert render_cache_info().currsize == render_cache_info().bytes == 0
    finally:
        set_render_cache_bytes(RENDER_CACHE_BYTES)


def test_the_render_cache_bound_is_a_setting(tmp_path: Path) -> None:
    create_app(
        {"TESTING": True, "SESSION_DIR": str(tmp_path), "RENDER_CACHE_BYTES": 12345}
    )
    try:
        assert render_cache_info().max_bytes == 12345
    finally:
        set_render_cache_bytes(RENDER_CACHE_BYTES)


def test_find_reuses_the_rendered_markdown() -> None:
    # A large hostile message: parsing it is the expensive part.
    text = "\n\n".join(_ai_text(p) for p in FAMILIES["script"] * 4)
    assert 20_000 < len(text) < MARKDOWN_MAX_CHARS
    plain = render_markdown(text, anchor_prefix="f-", citation_count=1)
    for needle in ("alert", "script", "cookie", "evil", "nothing like it"):
        html = render_markdown(text, anchor_prefix="f-", citation_count=1, find=needle)
        marked = assert_sanitized(str(html)).find_all("mark")
        assert marked == [] if needle == "nothing like it" else marked
        assert all(m.text.casefold() == needle for m in marked)
    assert render_cache_info().misses == 1
    assert render_markdown(text, anchor_prefix="f-", citation_count=1) == plain


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_find_only_adds_marks_to_sanitized_html(family: str) -> None:
    text = "\n\n".join(_ai_text(p) for p in FAMILIES[family])
    plain = str(render_markdown(text, anchor_prefix="f-", citation_count=1))
    for needle in ("a", "script", "<", "&", "quot", "amp", "lt", '"', "href", "】"):
        html = str(
            render_markdown(text, anchor_prefix="f-", citation_count=1, find=needle)
        )
        assert_sanitized(html)
        # Take the marks away: the same HTML, up to how text is escaped.
        bare = html.replace("<mark>", "").replace("</mark>", "")
        assert unescape(bare) == unescape(plain), needle


def render_with_deadline(text: str, seconds: float = 10.0) -> str:
    """Render in a daemon thread so a hang fails the test instead of the run."""
    result: list[str] = []
    worker = threading.Thread(
        target=lambda: result.append(
            render_markdown(text, anchor_prefix="b", citation_count=1)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(seconds)
    assert result, f"render did not finish within {seconds} s"
    return result[0]


BOMBS = {
    "nested_quotes": ">" * 5000 + " deep <script>x</script>",
    "quote_staircase": "\n".join(">" * n + " x" for n in range(1, 400)),
    "stars": "a" + "*" * 50_000,
    "underscores": "a" + "_" * 50_000,
    "star_words": "a* " * 30_000,
    "brackets": "[" * 50_000,
    "parens": "(" * 50_000,
    "image_openers": "![" * 40_000,
    "link_openers": "[a](" * 20_000,
    "emphasis_mix": "*_" * 40_000,
    "backticks": "`a``" * 20_000,
    "angle": "<" * 50_000,
    "nested_lists": "\n".join("  " * n + "- x" for n in range(300)),
    "nested_ordered": "\n".join("   " * n + "1. x" for n in range(250)),
    "list_markers": "- " * 40_000 + "x",
    "wide_table": "|x" * 5000 + "|\n" + "|-" * 5000 + "|\n" + "|y" * 5000 + "|\n",
    "one_megabyte_line": "[*<" * 350_000,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", BOMBS)
def test_markdown_bombs_finish_and_stay_sanitized(name: str) -> None:
    text = BOMBS[name]
    html = render_with_deadline(text)
    root = assert_sanitized(html)
    plain = [pre.attrs for pre in root.find_all("pre")] == [{"class": "plain"}]
    assert plain == (len(text) > MARKDOWN_MAX_CHARS)
    assert root.find_all("img") == []
    assert "<script" not in html


def test_find_marks_matches_in_text_but_not_in_code() -> None:
    html = str(
        render_markdown(
            "Policy **POLICY** and `policy()`\n\n```\npolicy\n```",
            anchor_prefix="f-",
            citation_count=0,
            find="policy",
        )
    )
    assert html.count("<mark>") == 2
    assert "<mark>Policy</mark>" in html
    assert "<strong><mark>POLICY</mark></strong>" in html
    assert "<code>policy()</code>" in html


def test_find_needle_is_text_not_markup() -> None:
    html = str(
        render_markdown("a <b> b", anchor_prefix="f-", citation_count=0, find="<b>")
    )
    assert "<mark>&lt;b&gt;</mark>" in html
    assert "<b>" not in html
