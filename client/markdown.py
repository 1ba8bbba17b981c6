"""Message formatting for Python clients: the twin of static/chat/js/markdown.js.

`parse` returns the same tree as the browser's `parse`, and `plain_text` the same text as its
`plainText`, so a client that cannot show formatting shows what the browser would have shown
without it. tests/markdown/corpus.json holds both implementations to the same answers.
"""

import re

MAX_DEPTH = 8
SAFE_HREF = re.compile(
    r'^(?:https?://[^\s\x00-\x1f\x7f/?#<>"\\]+[^\s\x00-\x1f\x7f<>"\\]*'
    r'|mailto:[^\s\x00-\x1f\x7f<>"\\@]+@[^\s\x00-\x1f\x7f<>"\\]+)$',
    re.IGNORECASE,
)
ESCAPABLE = "\\`*_[]()#>-.!~|{}+"
BARE_LINK = re.compile(r'https?://[^\s<>"]+', re.IGNORECASE)
MENTION = re.compile(r"@([\w.+-]+)")
ANGLE_LINK = re.compile(r'<((?:https?://|mailto:)[^\s<>"]+)>', re.IGNORECASE)
TRAILING_PUNCTUATION = re.compile(r"[.,;:!?)\]}'\"]+$")
FENCE = re.compile(r"^ {0,3}```\s*([\w+-]*)\s*$", re.ASCII)
FENCE_CLOSE = re.compile(r"^ {0,3}```\s*$")
QUOTE = re.compile(r"^ {0,3}> ?(.*)$")
BULLET = re.compile(r"^ {0,3}[-*] +(.*)$")
NUMBERED = re.compile(r"^ {0,3}(\d{1,9})[.)] +(.*)$")


def parse(text: str) -> list[dict]:
    """Return the blocks of a message, as markdown.js's parse() does."""
    lines = re.sub(r"\r\n?", "\n", str(text)).split("\n")
    blocks: list[dict] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            body = []
            index += 1
            while index < len(lines) and not FENCE_CLOSE.match(lines[index]):
                body.append(lines[index])
                index += 1
            index += 1
            blocks.append({"type": "code_block", "language": fence.group(1), "text": "\n".join(body)})
        elif QUOTE.match(line):
            body = []
            while index < len(lines) and QUOTE.match(lines[index]):
                body.append(QUOTE.match(lines[index]).group(1))
                index += 1
            blocks.append({"type": "quote", "children": _inline_lines(body)})
        elif BULLET.match(line) or NUMBERED.match(line):
            blocks.append(_list(lines, index))
            index = blocks[-1].pop("_end")
        elif line.strip() == "":
            index += 1
        else:
            body = []
            while index < len(lines) and lines[index].strip() != "" and not _starts_block(lines[index]):
                body.append(lines[index])
                index += 1
            blocks.append({"type": "paragraph", "children": _inline_lines(body)})
    return blocks


def _list(lines: list[str], index: int) -> dict:
    ordered = not BULLET.match(lines[index])
    pattern = NUMBERED if ordered else BULLET
    start = int(NUMBERED.match(lines[index]).group(1)) if ordered else None
    items = []
    while index < len(lines) and pattern.match(lines[index]):
        match = pattern.match(lines[index])
        items.append(inline(match.group(2) if ordered else match.group(1)))
        index += 1
    block = {"type": "list", "ordered": ordered, "items": items, "_end": index}
    if ordered:
        block["start"] = start
    return block


def _starts_block(line: str) -> bool:
    return bool(FENCE.match(line) or QUOTE.match(line) or BULLET.match(line) or NUMBERED.match(line))


def _inline_lines(lines: list[str]) -> list[dict]:
    children: list[dict] = []
    for position, line in enumerate(lines):
        if position:
            children.append({"type": "break"})
        children.extend(inline(line))
    return children


def _char(text: str, i: int) -> str | None:
    return text[i] if 0 <= i < len(text) else None


def _is_space(char: str | None) -> bool:
    return char is not None and char.isspace()


def _is_word(char: str | None) -> bool:
    return char is not None and (char.isalnum() or char == "_")


def _run(text: str, start: int, char: str) -> int:
    end = start
    while end < len(text) and text[end] == char:
        end += 1
    return end - start


def inline(text: str, depth: int = 0, in_link: bool = False) -> list[dict]:
    """Return the inline nodes of one line."""
    nodes: list[dict] = []
    literal = []

    def flush():
        if literal:
            nodes.append({"type": "text", "text": "".join(literal)})
            literal.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPABLE:
            literal.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            run = _run(text, i, "`")
            close = text.find("`" * run, i + run)
            if close > i + run and _run(text, close, "`") == run:
                flush()
                nodes.append({"type": "code", "text": text[i + run : close]})
                i = close + run
                continue
            literal.append("`" * run)
            i += run
            continue
        if depth < MAX_DEPTH and char in "*_":
            span = _emphasis(text, i, depth, in_link)
            if span:
                flush()
                nodes.append(span[0])
                i = span[1]
                continue
            run = _run(text, i, char)
            literal.append(char * run)
            i += run
            continue
        if char == "[" and not in_link and depth < MAX_DEPTH:
            link = _bracket_link(text, i, depth)
            if link:
                flush()
                nodes.append(link[0])
                i = link[1]
                continue
        if char == "<" and not in_link:
            match = ANGLE_LINK.match(text, i)
            if match and safe_href(match.group(1)):
                flush()
                href = match.group(1)
                children = [{"type": "text", "text": href}]
                nodes.append({"type": "link", "href": href, "children": children, "preview": False})
                i = match.end()
                continue
        if char == "@" and not in_link and not _is_word(_char(text, i - 1)):
            match = MENTION.match(text, i)
            username = match.group(1).rstrip(".") if match else ""
            if username:
                flush()
                nodes.append({"type": "mention", "username": username})
                i += 1 + len(username)
                continue
        if not in_link and char in "hH" and not _is_word(_char(text, i - 1)):
            match = BARE_LINK.match(text, i)
            if match:
                url = TRAILING_PUNCTUATION.sub("", match.group(0))
                if safe_href(url):
                    flush()
                    nodes.append({"type": "link", "href": url, "children": [{"type": "text", "text": url}]})
                    i += len(url)
                    continue
        literal.append(char)
        i += 1
    flush()
    return nodes


def _emphasis(text: str, start: int, depth: int, in_link: bool):
    char = text[start]
    width = 2 if _run(text, start, char) >= 2 else 1
    marker = char * width
    after = _char(text, start + width)
    if after is None or after.isspace():
        return None
    if char == "_" and _is_word(_char(text, start - 1)):
        return None
    close = _find_close(text, start + width, marker)
    if close == -1 or (width == 1 and close == start + 1):
        return None
    children = inline(text[start + width : close], depth + 1, in_link)
    return {"type": "strong" if width == 2 else "em", "children": children}, close + width


def _find_close(text: str, start: int, marker: str) -> int:
    char = marker[0]
    i = start
    while i < len(text):
        current = text[i]
        if current == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPABLE:
            i += 2
            continue
        if current == "`":
            run = _run(text, i, "`")
            close = text.find("`" * run, i + run)
            i = close + run if close > i + run else i + run
            continue
        if current == char:
            run = _run(text, i, char)
            fits = run >= 2 if len(marker) == 2 else run == 1
            closable = i > start and not _is_space(text[i - 1]) and not (char == "_" and _is_word(_char(text, i + run)))
            if fits and closable:
                return i + run - 2 if len(marker) == 2 else i
            i += run
            continue
        i += 1
    return -1


def _bracket_link(text: str, start: int, depth: int):
    level, close, i = 0, -1, start
    while i < len(text):
        if text[i] == "\\":
            i += 1
        elif text[i] == "[":
            level += 1
        elif text[i] == "]":
            level -= 1
            if level == 0:
                close = i
                break
        i += 1
    if close == -1 or _char(text, close + 1) != "(":
        return None
    end = text.find(")", close + 2)
    if end == -1:
        return None
    href = text[close + 2 : end].strip()
    if not href or any(c.isspace() for c in href) or not safe_href(href):
        return None
    label = text[start + 1 : close]
    children = inline(label, depth + 1, True) if label else [{"type": "text", "text": href}]
    return {"type": "link", "href": href, "children": children}, end + 1


def safe_href(href: str) -> bool:
    """Return True for an absolute http(s) or mailto URL, as the browser decides."""
    return bool(SAFE_HREF.match(href)) and "\n" not in href


def mentions_of(text: str) -> list[str]:
    """Return the usernames a text mentions, lowercased, without repeats ("channel" and "here" included)."""
    found: dict[str, None] = {}

    def walk(nodes):
        for node in nodes:
            if node["type"] == "mention":
                found[node["username"].lower()] = None
            else:
                walk(node.get("children") or [child for item in node.get("items", []) for child in item])

    walk([block for block in parse(text) if block["type"] != "code_block"])
    return list(found)


def first_preview_link(text: str) -> str | None:
    """Return the first http(s) link that may get a preview (not written as <url>), or None."""

    def walk(nodes):
        for node in nodes:
            if node["type"] == "link":
                if node.get("preview", True) and node["href"].lower().startswith(("http://", "https://")):
                    return node["href"]
                continue
            children = node.get("children") or [child for item in node.get("items", []) for child in item]
            found = walk(children)
            if found:
                return found
        return None

    return walk([block for block in parse(text) if block["type"] != "code_block"])


def plain_text(text: str) -> str:
    """Return the message as plain text, as markdown.js's plainText() does."""
    out = []
    for block in parse(text):
        if block["type"] == "code_block":
            out.append(block["text"])
        elif block["type"] == "quote":
            out.append("\n".join(f"> {line}" for line in _plain(block["children"]).split("\n")))
        elif block["type"] == "list":
            marks = [f"{block['start'] + n}." if block["ordered"] else "-" for n in range(len(block["items"]))]
            out.append("\n".join(f"{mark} {_plain(item)}" for mark, item in zip(marks, block["items"], strict=True)))
        else:
            out.append(_plain(block["children"]))
    return "\n".join(out)


def _plain(nodes: list[dict]) -> str:
    parts = []
    for node in nodes:
        if node["type"] in {"text", "code"}:
            parts.append(node["text"])
        elif node["type"] == "mention":
            parts.append(f"@{node['username']}")
        elif node["type"] == "break":
            parts.append("\n")
        elif node["type"] == "link":
            label = _plain(node["children"])
            parts.append(label if label == node["href"] else f"{label} ({node['href']})")
        else:
            parts.append(_plain(node["children"]))
    return "".join(parts)
