// System messages: the lines that say who created, joined, left or renamed a conversation
// (docs/protocol.md). The server writes them in plaintext, even in encrypted conversations.
// No DOM.

const WHAT = { direct: "conversation", group: "group", channel: "channel" };
const ROLES = { owner: "the owner", admin: "an admin", member: "a member" };
const PRESENT = new Set(["member.added", "member.joined"]);
const GONE = new Set(["member.removed", "member.left"]);

/** Return the line a system message shows, with names as the page knows them now. */
export function systemText(message, store) {
  const system = message.system;
  if (!system) return message.body ?? "";
  const conversation = store.conversations.get(message.conversation);
  const what = WHAT[conversation?.kind] ?? "conversation";
  const name = (id) => {
    if (id === null || id === undefined) return "Someone";
    if (id === store.me.id) return "you";
    const user = store.users.get(id);
    return user?.display_name || user?.username || system.names?.[String(id)] || "Someone";
  };
  const actor = name(system.actor);
  const user = name(system.user);
  const texts = {
    created: conversation?.kind === "direct" ? `${actor} started this conversation` : `${actor} created this ${what}`,
    "member.added": `${user} ${system.user === store.me.id ? "were" : "was"} added by ${actor}`,
    "member.removed": `${user} ${system.user === store.me.id ? "were" : "was"} removed by ${actor}`,
    "member.left": `${user} left`,
    "member.joined": `${user} joined`,
    "role.changed":
      system.actor === null || system.actor === undefined
        ? `${user} ${system.user === store.me.id ? "are" : "is"} now ${ROLES[system.role] ?? system.role}`
        : `${actor} made ${user} ${ROLES[system.role] ?? system.role}`,
    "member.muted": system.until
      ? `${user} ${system.user === store.me.id ? "were" : "was"} muted by ${actor} until ${new Date(system.until).toLocaleString()}`
      : `${actor} lifted the mute on ${user}`,
    renamed: `${actor} renamed the ${what} to “${system.name ?? ""}”`,
    "topic.changed": system.topic ? `${actor} changed the topic to “${system.topic}”` : `${actor} cleared the topic`,
    archived: `${actor} ${system.archived === false ? "unarchived" : "archived"} the ${what}`,
  };
  const text = texts[system.event] ?? message.body ?? "";
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Return the members of an encrypted conversation whose arrival no system line accounts for:
 * the server controls member lists, so one it added quietly is flagged (docs/e2e.md). Only
 * decidable once the whole history is loaded and it starts with the "created" line; else [].
 */
export function unannouncedMembers(conversation, log) {
  if (!conversation.encrypted || !log.historyLoaded || log.hasOlder) return [];
  const stored = [...log.byId.values()].sort((a, b) => a.id - b.id);
  if (stored[0]?.system?.event !== "created") return [];
  const present = new Set();
  for (const message of stored) {
    const system = message.system;
    if (!system) continue;
    if (system.event === "created") {
      present.add(system.actor);
      if (system.user !== null && system.user !== undefined) present.add(system.user);
    } else if (PRESENT.has(system.event)) {
      present.add(system.user);
    } else if (GONE.has(system.event)) {
      present.delete(system.user);
    }
  }
  return conversation.members.filter((member) => !present.has(member.id));
}
