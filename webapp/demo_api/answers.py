"""Fill text templates and assemble Markdown-rich AI answers.

Answers mix paragraphs with bold/emphasis, bullet and numbered lists, fenced
code (python, sql, json), GFM tables, https links and inline code, so a client's
Markdown rendering is exercised. Builders take the seeded ``random.Random``.
"""

from __future__ import annotations

import random

from . import texts


def fill(template: str, rng: random.Random, topic: str) -> str:
    """Fill a text template's placeholders with seeded choices."""
    return template.format(
        topic=topic,
        quarter=rng.choice(texts.QUARTERS),
        dept=rng.choice(texts.DEPARTMENTS),
        vendor=rng.choice(texts.VENDORS),
        region=rng.choice(texts.REGIONS),
        approver=rng.choice(texts.APPROVERS),
        system=rng.choice(texts.SYSTEMS),
        amount=f"${rng.randint(2, 400) * 25:,}",
        ticket=f"SEC-{rng.randint(100, 9999)}",
    )


def capitalise(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would lower "NDA")."""
    return text[:1].upper() + text[1:]


def _slug(text: str) -> str:
    return "-".join(text.lower().replace(":", "").split())


def _paragraph(rng: random.Random, topic: str) -> str:
    first = rng.choice(
        (
            "Under the **{topic}** guidance, requests _must_ be approved by "
            "{approver} before you commit any spend.",
            "Short answer: **yes**, as long as {approver} agrees and the request "
            "is logged in {system}.",
            "The _current_ rules on {topic} were refreshed this quarter; the main "
            "change is that **{dept}** now owns the process.",
            "For {topic}, the policy sets a **hard limit** of {amount} per event; "
            "anything above needs _written_ approval.",
        )
    )
    second = rng.choice(
        (
            "Keep the supporting evidence for at least seven years.",
            "If in doubt, ask {approver} before acting.",
            "Exceptions are reviewed monthly by {dept}.",
            "Contractors follow the same rules as employees here.",
        )
    )
    return fill(f"{first} {second}", rng, topic)


def _bullets(rng: random.Random, topic: str) -> str:
    lines = [
        "Here is what applies:",
        "",
        "- **Approval**: {approver}",
        "- **Limit**: {amount} per request",
        "- **Where**: submit it in {system}",
    ]
    if rng.random() < 0.5:
        lines.append("- _Note_: the {region} office has a local addendum")
    return fill("\n".join(lines), rng, topic)


def _numbered(rng: random.Random, topic: str) -> str:
    steps = [
        "Open a new request in `{system}`.",
        "Attach the supporting documents for {topic}.",
        "Pick {approver} as the approver.",
        "Wait for the confirmation email before you proceed.",
    ]
    count = rng.randint(3, 4)
    lines = ["Steps:", ""] + [f"{i}. {s}" for i, s in enumerate(steps[:count], 1)]
    return fill("\n".join(lines), rng, topic)


def _code(rng: random.Random, topic: str) -> str:
    limit = rng.randint(2, 40) * 250
    language = rng.choice(("python", "sql", "json"))
    if language == "python":
        body = (
            f"def within_limit(amount: float, limit: float = {limit}) -> bool:\n"
            '    """Return True when the amount needs no extra approval."""\n'
            "    return amount <= limit"
        )
    elif language == "sql":
        body = (
            "SELECT cost_centre, SUM(amount) AS total\n"
            "FROM expenses\n"
            f"WHERE amount >= {limit}\n"
            "GROUP BY cost_centre\n"
            "ORDER BY total DESC;"
        )
    else:
        approver = rng.choice(texts.APPROVERS)
        body = (
            "{\n"
            f'  "policy": "{_slug(topic)}",\n'
            f'  "approver": "{approver}",\n'
            f'  "limit": {limit},\n'
            '  "receiptsRequired": true\n'
            "}"
        )
    return f"You can check this automatically:\n\n```{language}\n{body}\n```"


def _table(rng: random.Random, topic: str) -> str:
    rows = [
        f"| {region} | ${rng.randint(4, 80) * 25:,} | {rng.choice(texts.APPROVERS)} |"
        for region in rng.sample(texts.REGIONS, rng.randint(2, 4))
    ]
    head = ["| Office | Limit | Approver |", "| --- | ---: | --- |"]
    return f"Limits for {topic} by office:\n\n" + "\n".join(head + rows)


def _link(rng: random.Random, topic: str) -> str:
    url = f"https://policies.demo.aicrisk.com/{_slug(topic)}"
    return rng.choice(
        (
            f"The full text is on the [policy portal]({url}).",
            f"See {url} for the latest version.",
            f"More detail: [{capitalise(topic)}]({url}#summary).",
        )
    )


def _inline_code(rng: random.Random, topic: str) -> str:
    return (
        f"Use cost centre `CC-{rng.randint(1000, 9999)}` and the tag "
        f"`{_slug(topic)}` so the request is routed correctly."
    )


_BLOCKS = (_bullets, _numbered, _code, _table)
_CLOSERS = (_link, _inline_code)


def ai_answer(rng: random.Random, topic: str) -> list[str]:
    """Return the Markdown blocks of one AI answer (joined by the caller)."""
    blocks = [_paragraph(rng, topic)]
    # About a quarter of answers stay plain prose, as real ones often do.
    if rng.random() < 0.75:
        for block in rng.sample(_BLOCKS, rng.randint(1, 2)):
            blocks.append(block(rng, topic))
    if rng.random() < 0.5:
        blocks.append(rng.choice(_CLOSERS)(rng, topic))
    return blocks


def short_markdown(rng: random.Random, topic: str) -> str:
    """Return a compact Markdown answer for the long conversation."""
    return rng.choice(
        (
            fill("**Yes.** Log it in `{system}` and tag it _{topic}_.", rng, topic),
            fill("- Approver: {approver}\n- Limit: {amount}", rng, topic),
            fill("1. Check the limit.\n2. Ask {approver}.", rng, topic),
            _link(rng, topic),
        )
    )
