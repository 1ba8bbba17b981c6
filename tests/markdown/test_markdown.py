"""Message formatting: the Python twin matches the browser's parser, and node runs the browser's tests."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from client.markdown import first_preview_link, parse, plain_text, safe_href

HERE = Path(__file__).resolve().parent
CORPUS = json.loads((HERE / "corpus.json").read_text())
XSS = json.loads((HERE / "xss.json").read_text())
NODE_TYPES = {"paragraph", "quote", "list", "code_block", "text", "break", "code", "strong", "em", "link", "mention"}


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_python_parser_gives_the_browsers_tree_and_plain_text(case):
    assert parse(case["source"]) == case["blocks"]
    assert plain_text(case["source"]) == case["plain"]


def _walk(nodes):
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))
        for item in node.get("items", []):
            yield from _walk(item)


@pytest.mark.parametrize("source", XSS)
def test_markup_in_a_message_never_becomes_a_link_to_a_script(source):
    for node in _walk(parse(source)):
        assert node["type"] in NODE_TYPES
        if node["type"] == "link":
            assert node["href"].lower().startswith(("http://", "https://", "mailto:"))


def test_only_absolute_web_and_mail_addresses_are_links():
    assert safe_href("https://example.com/a?b#c") and safe_href("mailto:a@b.c")
    bad_links = ["javascript:alert(1)", "java\tscript:x", "//evil.example", "http:evil", "https://a.example/\n"]
    bad_links.append("data:x,y")
    for bad in bad_links:
        assert not safe_href(bad), bad


def test_the_browser_parser_passes_its_node_tests():
    node = shutil.which("node")
    assert node, "node is needed to test static/chat/js/markdown.js"
    result = subprocess.run([node, "--test", str(HERE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_the_first_previewable_link_skips_angle_links_mailto_and_code():
    assert first_preview_link("see <https://a.example> and [b](https://b.example)") == "https://b.example"
    assert first_preview_link("mail [me](mailto:a@b.c) or `https://c.example`") is None
    assert first_preview_link("```\nhttps://d.example\n```\n- https://e.example") == "https://e.example"
