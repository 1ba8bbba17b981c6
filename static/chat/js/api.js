// The HTTP JSON API (docs/protocol.md): session cookie plus X-CSRFToken on unsafe methods.

export class ApiError extends Error {
  constructor(code, detail, status) {
    super(detail || code);
    this.code = code;
    this.status = status;
  }
}

export function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("network", "Cannot reach the server. Check your connection.", 0);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(answer?.error ?? "server_error", answer?.detail ?? `The server answered ${response.status}.`, response.status);
  }
  return answer;
}

const conversationPath = (id) => `/api/conversations/${encodeURIComponent(id)}`;

export const api = {
  conversations: () => request("GET", "/api/conversations/"),
  channels: () => request("GET", "/api/channels/"),
  users: (query) => request("GET", `/api/users/?q=${encodeURIComponent(query)}`),
  user: (username) => request("GET", `/api/users/${encodeURIComponent(username)}/`),
  startDirect: (username) => request("POST", "/api/conversations/", { kind: "direct", members: [username] }),
  conversation: (id) => request("GET", `${conversationPath(id)}/`),
  createGroup: (name, usernames, encrypted = true) =>
    request("POST", "/api/conversations/", { kind: "group", name, members: usernames, encrypted }),
  createChannel: (name, topic) => request("POST", "/api/conversations/", { kind: "channel", name, topic }),
  join: (id) => request("POST", `${conversationPath(id)}/join/`),
  setMuted: (id, muted) => request("PATCH", `${conversationPath(id)}/`, { muted }),
  invite: (id, username) => request("POST", `${conversationPath(id)}/members/`, { username }),
  setRole: (id, username, role) => request("PATCH", `${conversationPath(id)}/members/${encodeURIComponent(username)}/`, { role }),
  muteMember: (id, username, mutedUntil) =>
    request("PATCH", `${conversationPath(id)}/members/${encodeURIComponent(username)}/`, { muted_until: mutedUntil }),
  updateConversation: (id, fields) => request("PATCH", `${conversationPath(id)}/`, fields),
  removeMember: (id, username) => request("DELETE", `${conversationPath(id)}/members/${encodeURIComponent(username)}/`),
  blocks: () => request("GET", "/api/blocks/"),
  block: (username) => request("POST", "/api/blocks/", { username }),
  unblock: (username) => request("DELETE", `/api/blocks/${encodeURIComponent(username)}/`),
  report: (fields) => request("POST", "/api/reports/", fields),
  ownKey: () => request("GET", "/api/keys/"),
  putKey: (backup) => request("PUT", "/api/keys/", backup),
  publicKey: (username) => request("GET", `/api/keys/${encodeURIComponent(username)}/`),
  search: ({ q, conversationId, sender, after, before, page }) => {
    const query = new URLSearchParams({ q });
    if (conversationId) query.set("conversation", conversationId);
    if (sender) query.set("sender", sender);
    if (after) query.set("after", after);
    if (before) query.set("before", before);
    if (page && page > 1) query.set("page", page);
    return request("GET", `/api/search/?${query}`);
  },
  messages: (id, { before, limit } = {}) => {
    const query = new URLSearchParams();
    if (before) query.set("before", before);
    if (limit) query.set("limit", limit);
    return request("GET", `${conversationPath(id)}/messages/?${query}`);
  },
};
