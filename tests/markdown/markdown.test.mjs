// node --test: the browser's Markdown parser against the shared corpus, and the XSS corpus.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";

import { firstPreviewLink, parse, plainText, safeHref } from "../../static/chat/js/markdown.js";

const corpus = JSON.parse(fs.readFileSync(new URL("./corpus.json", import.meta.url)));
const xss = JSON.parse(fs.readFileSync(new URL("./xss.json", import.meta.url)));
const NODE_TYPES = new Set(["paragraph", "quote", "list", "code_block", "text", "break", "code", "strong", "em", "link", "mention"]);

for (const { name, source, blocks, plain } of corpus) {
  test(`corpus: ${name}`, () => {
    assert.deepEqual(parse(source), blocks);
    assert.equal(plainText(source), plain);
  });
}

function* walk(nodes) {
  for (const node of nodes) {
    yield node;
    if (node.children) yield* walk(node.children);
    if (node.items) for (const item of node.items) yield* walk(item);
  }
}

for (const source of xss) {
  test(`xss stays inert: ${JSON.stringify(source).slice(0, 60)}`, () => {
    for (const node of walk(parse(source))) {
      assert.ok(NODE_TYPES.has(node.type), node.type);
      if (node.type === "link") assert.match(node.href, /^(https?:\/\/|mailto:)/i);
    }
  });
}

test("only absolute http(s) and mailto addresses are links", () => {
  for (const good of ["https://example.com", "http://a.b/c?d#e", "mailto:a@b.c", "HTTPS://EXAMPLE.COM"]) assert.ok(safeHref(good), good);
  const bad = ["javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)", " javascript:x", "data:text/html,x", "vbscript:x",
    "//evil.example", "/relative", "http:evil", "https://a.example/\"onclick=x", "https://a.example/\nx", "file:///etc/passwd", "mailto:"];
  for (const url of bad) assert.ok(!safeHref(url), url);
});

test("a long message with many markers parses quickly", () => {
  const text = "*a _b **c `d [e](f".repeat(250);
  const started = performance.now();
  parse(text);
  assert.ok(performance.now() - started < 500);
});

test("the first previewable link skips <url>, mailto and code", () => {
  assert.equal(firstPreviewLink("see <https://a.example> and [b](https://b.example)"), "https://b.example");
  assert.equal(firstPreviewLink("mail [me](mailto:a@b.c) or `https://c.example`"), null);
  assert.equal(firstPreviewLink("```\nhttps://d.example\n```\n- https://e.example"), "https://e.example");
});
