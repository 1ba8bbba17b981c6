// The message formatting every client shares: a small Markdown subset.
//
// Blocks: paragraphs (single line breaks kept), ``` code blocks, "> " quotes, "- "/"* " and
// "1. " lists. Inline: **bold**, *italic* or _italic_, `code`, [text](url), bare http(s)
// links, <url> links (no preview), @mentions, and backslash escapes. Anything else stays literal text.
//
// `parse` turns text into a plain tree (no DOM, so node's test runner checks it), `render`
// builds DOM nodes from that tree with createElement and text nodes only, never from an HTML
// string, so nothing a sender writes can become markup, a script or an event handler.
// client/markdown.py mirrors `parse` and `plainText` for the Python client; the shared corpus
// in tests/markdown/corpus.json holds both to the same output.

const MAX_DEPTH = 8; // nesting of inline spans; deeper markers stay literal
const SAFE_HREF = /^(?:https?:\/\/[^\s\u0000-\u001f\u007f/?#<>"\\]+[^\s\u0000-\u001f\u007f<>"\\]*|mailto:[^\s\u0000-\u001f\u007f<>"\\@]+@[^\s\u0000-\u001f\u007f<>"\\]+)$/i;
const ESCAPABLE = "\\`*_[]()#>-.!~|{}+";
const BARE_LINK = /^https?:\/\/[^\s<>"]+/i;
// @username (letters, digits and . + - _ as Django allows; a final "." ends the sentence).
const MENTION = /^@([\p{L}\p{N}_.+-]+)/u;
const ANGLE_LINK = /^<((?:https?:\/\/|mailto:)[^\s<>"]+)>/i;
// Punctuation that usually ends the sentence rather than the link.
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;
const FENCE = /^ {0,3}```\s*([\w+-]*)\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const BULLET = /^ {0,3}[-*] +(.*)$/;
const NUMBERED = /^ {0,3}(\d{1,9})[.)] +(.*)$/;

/** Return the blocks of a message: [{type, ...}] with inline children (see module comment). */
export function parse(text) {
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      index += 1;
      while (index < lines.length && !/^ {0,3}```\s*$/.test(lines[index])) body.push(lines[index++]);
      index += 1; // the closing fence, or past the end when the block runs to the end
      blocks.push({ type: "code_block", language: fence[1], text: body.join("\n") });
    } else if (QUOTE.test(line)) {
      const body = [];
      while (index < lines.length && QUOTE.test(lines[index])) body.push(QUOTE.exec(lines[index++])[1]);
      blocks.push({ type: "quote", children: inlineLines(body) });
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const ordered = !BULLET.test(line);
      const pattern = ordered ? NUMBERED : BULLET;
      const items = [];
      const start = ordered ? Number(NUMBERED.exec(line)[1]) : null;
      while (index < lines.length && pattern.test(lines[index])) {
        const match = pattern.exec(lines[index++]);
        items.push(inline(ordered ? match[2] : match[1]));
      }
      blocks.push(ordered ? { type: "list", ordered, start, items } : { type: "list", ordered, items });
    } else if (line.trim() === "") {
      index += 1;
    } else {
      const body = [];
      while (index < lines.length && lines[index].trim() !== "" && !startsBlock(lines[index])) body.push(lines[index++]);
      blocks.push({ type: "paragraph", children: inlineLines(body) });
    }
  }
  return blocks;
}

function startsBlock(line) {
  return FENCE.test(line) || QUOTE.test(line) || BULLET.test(line) || NUMBERED.test(line);
}

/** Inline content of several lines, with a line break between them. */
function inlineLines(lines) {
  const children = [];
  lines.forEach((line, position) => {
    if (position) children.push({ type: "break" });
    children.push(...inline(line));
  });
  return children;
}

/** Return the inline nodes of one line. */
export function inline(text, depth = 0, inLink = false) {
  const nodes = [];
  let literal = "";
  const flush = () => {
    if (literal) nodes.push({ type: "text", text: literal });
    literal = "";
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      literal += text[i + 1];
      i += 2;
      continue;
    }
    if (char === "`") {
      const run = runLength(text, i, "`");
      const close = text.indexOf("`".repeat(run), i + run);
      if (close > i + run && runLength(text, close, "`") === run) {
        flush();
        nodes.push({ type: "code", text: text.slice(i + run, close) });
        i = close + run;
        continue;
      }
      literal += "`".repeat(run);
      i += run;
      continue;
    }
    if (depth < MAX_DEPTH && (char === "*" || char === "_")) {
      const span = emphasis(text, i, depth, inLink);
      if (span) {
        flush();
        nodes.push(span.node);
        i = span.end;
        continue;
      }
      const run = runLength(text, i, char);
      literal += char.repeat(run);
      i += run;
      continue;
    }
    if (char === "[" && !inLink && depth < MAX_DEPTH) {
      const link = bracketLink(text, i, depth);
      if (link) {
        flush();
        nodes.push(link.node);
        i = link.end;
        continue;
      }
    }
    if (char === "<" && !inLink) {
      // <https://…> is a link too, and the sender's way to say "no preview for this one".
      const match = ANGLE_LINK.exec(text.slice(i));
      if (match && safeHref(match[1])) {
        flush();
        nodes.push({ type: "link", href: match[1], children: [{ type: "text", text: match[1] }], preview: false });
        i += match[0].length;
        continue;
      }
    }
    if (char === "@" && !inLink && !isWordChar(text[i - 1])) {
      const match = MENTION.exec(text.slice(i));
      const username = match?.[1].replace(/\.+$/, "");
      if (username) {
        flush();
        nodes.push({ type: "mention", username });
        i += 1 + username.length;
        continue;
      }
    }
    if (!inLink && (char === "h" || char === "H") && !isWordChar(text[i - 1])) {
      const match = BARE_LINK.exec(text.slice(i));
      if (match) {
        const url = match[0].replace(TRAILING_PUNCTUATION, "");
        if (safeHref(url)) {
          flush();
          nodes.push({ type: "link", href: url, children: [{ type: "text", text: url }] });
          i += url.length;
          continue;
        }
      }
    }
    literal += char;
    i += 1;
  }
  flush();
  return nodes;
}

/** Try `**strong**`, `*em*` or `_em_` at `start`; return {node, end} or null. */
function emphasis(text, start, depth, inLink) {
  const char = text[start];
  const run = runLength(text, start, char);
  const width = run >= 2 ? 2 : 1;
  const marker = char.repeat(width);
  const after = text[start + width];
  if (after === undefined || /\s/.test(after)) return null;
  // An underscore inside a word (snake_case) is not a marker.
  if (char === "_" && isWordChar(text[start - 1])) return null;
  const close = findClose(text, start + width, marker);
  if (close === -1) return null;
  if (width === 1 && close === start + 1) return null;
  const inner = text.slice(start + width, close);
  const children = inline(inner, depth + 1, inLink);
  const type = width === 2 ? "strong" : "em";
  return { node: { type, children }, end: close + width };
}

/** Find a closing marker after `from`: not after whitespace, not inside code, not escaped. */
function findClose(text, from, marker) {
  const char = marker[0];
  let i = from;
  while (i < text.length) {
    const current = text[i];
    if (current === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      i += 2;
      continue;
    }
    if (current === "`") {
      const run = runLength(text, i, "`");
      const close = text.indexOf("`".repeat(run), i + run);
      i = close > i + run ? close + run : i + run;
      continue;
    }
    if (current === char) {
      const run = runLength(text, i, char);
      const fits = marker.length === 2 ? run >= 2 : run === 1;
      const closable = i > from && !/\s/.test(text[i - 1]) && !(char === "_" && isWordChar(text[i + run]));
      if (fits && closable) return marker.length === 2 ? i + run - 2 : i;
      i += run;
      continue;
    }
    i += 1;
  }
  return -1;
}

/** Try `[text](url)` at `start`; return {node, end} or null (then the text stays literal). */
function bracketLink(text, start, depth) {
  let level = 0;
  let close = -1;
  for (let i = start; i < text.length; i += 1) {
    if (text[i] === "\\") {
      i += 1;
    } else if (text[i] === "[") {
      level += 1;
    } else if (text[i] === "]") {
      level -= 1;
      if (level === 0) {
        close = i;
        break;
      }
    }
  }
  if (close === -1 || text[close + 1] !== "(") return null;
  const end = text.indexOf(")", close + 2);
  if (end === -1) return null;
  const href = text.slice(close + 2, end).trim();
  if (!href || /\s/.test(href) || !safeHref(href)) return null;
  const label = text.slice(start + 1, close);
  const children = label ? inline(label, depth + 1, true) : [{ type: "text", text: href }];
  return { node: { type: "link", href, children }, end: end + 1 };
}

/** Return true for an absolute http(s) or mailto URL; everything else is never a link. */
export function safeHref(href) {
  // A pattern, not the URL parser: the scheme must be written out, so no "javascript:" hides
  // behind control characters or a relative form, and client/markdown.py decides the same.
  return SAFE_HREF.test(href);
}

function runLength(text, start, char) {
  let end = start;
  while (text[end] === char) end += 1;
  return end - start;
}

function isWordChar(char) {
  return char !== undefined && /[\p{L}\p{N}_]/u.test(char);
}

/** Return the usernames a text mentions, lowercased, without repeats ("channel" and "here" included). */
export function mentionsOf(text) {
  const found = new Set();
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.type === "mention") found.add(node.username.toLowerCase());
      else walk(node.children ?? (node.items ?? []).flat());
    }
  };
  walk(parse(text).filter((block) => block.type !== "code_block"));
  return [...found];
}

/** Return the first http(s) link that may get a preview (not written as <url>), or null. */
export function firstPreviewLink(text) {
  const walk = (nodes) => {
    for (const node of nodes) {
      if (node.type === "link") {
        if (node.preview !== false && /^https?:\/\//i.test(node.href)) return node.href;
        continue;
      }
      const found = walk(node.children ?? (node.items ?? []).flat());
      if (found) return found;
    }
    return null;
  };
  return walk(parse(text).filter((block) => block.type !== "code_block"));
}

// Plain text: what a notification, a quote or a client without formatting shows.

/** Return the message as plain text: markers dropped, links as "text (url)", lists and quotes kept readable. */
export function plainText(text) {
  return parse(text)
    .map((block) => {
      if (block.type === "code_block") return block.text;
      if (block.type === "quote") return plainInline(block.children).split("\n").map((line) => `> ${line}`).join("\n");
      if (block.type === "list") {
        return block.items.map((item, n) => `${block.ordered ? `${block.start + n}.` : "-"} ${plainInline(item)}`).join("\n");
      }
      return plainInline(block.children);
    })
    .join("\n");
}

function plainInline(nodes) {
  return nodes
    .map((node) => {
      if (node.type === "text" || node.type === "code") return node.text;
      if (node.type === "mention") return `@${node.username}`;
      if (node.type === "break") return "\n";
      if (node.type === "link") {
        const label = plainInline(node.children);
        return label === node.href ? label : `${label} (${node.href})`;
      }
      return plainInline(node.children);
    })
    .join("");
}

// DOM

const INLINE_TAGS = { strong: "strong", em: "em" };

/** Return a DocumentFragment with the formatted message (text nodes and safe elements only). */
export function render(text, doc = document, context = {}) {
  const fragment = doc.createDocumentFragment();
  for (const block of parse(text)) fragment.append(renderBlock(block, doc, context));
  return fragment;
}

/**
 * Return the element that shows a message's text: a `p.message-text` for a single paragraph
 * (so it flows with the "(edited)" mark after it), else a `div.message-text.formatted`.
 */
export function formattedText(text, context = {}, doc = document) {
  const blocks = parse(text);
  if (blocks.length === 1 && blocks[0].type === "paragraph") {
    const paragraph = doc.createElement("p");
    paragraph.className = "message-text";
    paragraph.append(...renderInline(blocks[0].children, doc, context));
    return paragraph;
  }
  const container = doc.createElement("div");
  container.className = "message-text formatted";
  for (const block of blocks) container.append(renderBlock(block, doc, context));
  return container;
}

function renderBlock(block, doc, context) {
  if (block.type === "code_block") {
    const pre = doc.createElement("pre");
    const code = doc.createElement("code");
    code.textContent = block.text;
    pre.append(code);
    return pre;
  }
  if (block.type === "list") {
    const list = doc.createElement(block.ordered ? "ol" : "ul");
    if (block.ordered && block.start !== 1) list.setAttribute("start", String(block.start));
    for (const item of block.items) {
      const li = doc.createElement("li");
      li.append(...renderInline(item, doc, context));
      list.append(li);
    }
    return list;
  }
  const paragraph = doc.createElement("p");
  paragraph.append(...renderInline(block.children, doc, context));
  if (block.type !== "quote") return paragraph;
  const quote = doc.createElement("blockquote");
  quote.append(paragraph);
  return quote;
}

/**
 * `context.isMe(username)` says whether a mention is of the reader (their username, or an
 * @channel/@here that counts): such mentions get the class "mention-me".
 */
function renderInline(nodes, doc, context = {}) {
  return nodes.map((node) => {
    if (node.type === "text") return doc.createTextNode(node.text);
    if (node.type === "mention") {
      const mention = doc.createElement("span");
      mention.className = context.isMe?.(node.username) ? "mention mention-me" : "mention";
      mention.textContent = `@${node.username}`;
      return mention;
    }
    // A line break stays a newline in a pre-wrap paragraph, so the text reads as it was written.
    if (node.type === "break") return doc.createTextNode("\n");
    if (node.type === "code") {
      const code = doc.createElement("code");
      code.textContent = node.text;
      return code;
    }
    if (node.type === "link") {
      const link = doc.createElement("a");
      // Checked again here so that no tree, however built, yields an unsafe link.
      if (safeHref(node.href)) link.setAttribute("href", node.href);
      link.setAttribute("target", "_blank");
      link.setAttribute("rel", "noopener noreferrer");
      link.append(...renderInline(node.children, doc, context));
      return link;
    }
    const element = doc.createElement(INLINE_TAGS[node.type] ?? "span");
    element.append(...renderInline(node.children ?? [], doc, context));
    return element;
  });
}
