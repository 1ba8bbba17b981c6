"""The Chatterbox desktop app on Tkinter, like the original Chatterbox client, on the library.

The network lives in the `SyncClient`'s own thread; blocking calls run in short worker
threads, and everything they produce comes back to Tk's thread through one queue that
`poll()` drains every 50 ms. Widgets are only ever touched from Tk's thread.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
import tkinter as tk
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tkinter import filedialog, simpledialog, ttk

from client import config
from client.client import Event, Message
from client.errors import ChatterboxError, EncryptionLocked, NoKeyBackup, TwoFactorRequired
from client.sync import SyncClient

POLL_MS = 50
THUMBNAIL_SIZE = (220, 220)
TYPING_INTERVAL = 3.0
TYPING_SHOWN = 5.0
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
STATE_TEXT = {
    "connecting": "Connecting…",
    "connected": "Connected",
    "signed_out": "Signed out: sign in again.",
    "banned": "This account is banned.",
    "stopped": "Disconnected.",
}


class ChatApp:
    """The whole app in one window: a sign-in form, then the conversation list and the chat pane."""

    def __init__(self, root: tk.Tk, *, server: str | None = None, token: str | None = None):
        self.root = root
        self.chat: SyncClient | None = None
        self.current: int | None = None
        self.rows: list[int] = []
        self.shown: dict[int, list[Message]] = {}
        self.has_older: dict[int, bool] = {}
        self.typing: dict[tuple[int, int], float] = {}
        self.typed_at = 0.0
        self.thumbnails: dict[int, object] = {}  # message id -> PhotoImage (Tk needs the reference kept)
        # Message id -> {emoji: [user ids]}: kept by the server in plaintext conversations, folded
        # from encrypted reaction messages in encrypted ones, and moved by reaction events.
        self.reactions: dict[int, dict[str, list[int]]] = {}
        self.loading: set[int] = set()
        self._results: queue.Queue = queue.Queue()
        self._serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatterbox-send")
        root.title("Chatterbox")
        root.geometry("960x640")
        root.minsize(640, 420)
        self._style()
        stored_server, stored = config.stored_login(server or os.environ.get("CHATTERBOX_SERVER"))
        self.server_var = tk.StringVar(value=server or stored_server or "http://127.0.0.1:8000")
        self._build_login()
        self._build_main()
        self.show_login()
        root.after(POLL_MS, self.poll)
        token = token or os.environ.get("CHATTERBOX_TOKEN") or (stored or {}).get("token")
        if token and self.server_var.get():
            self.status("Signing in with your token…")
            self.background(lambda: self._connect(SyncClient(self.server_var.get(), token=token)), self.signed_in)

    # Layout

    def _style(self) -> None:
        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        # Plain Tk widgets (the window, lists, the message view) take the theme's background too.
        self.root.configure(background=style.lookup("TFrame", "background"))
        style.configure("Offline.TLabel", background="#b3261e", foreground="white", padding=6)
        style.configure("Online.TLabel", background="#e8f5e9", foreground="#1b5e20", padding=6)
        style.configure("Title.TLabel", font=("TkDefaultFont", 14, "bold"))
        style.configure("Error.TLabel", foreground="#b3261e")

    def _build_login(self) -> None:
        frame = self.login_frame = ttk.Frame(self.root, padding=32)
        ttk.Label(frame, text="Sign in to Chatterbox", style="Title.TLabel").grid(columnspan=2, pady=(0, 16))
        self.login_var, self.password_var, self.code_var = tk.StringVar(), tk.StringVar(), tk.StringVar()
        fields = [
            ("Server", self.server_var, {}),
            ("Username or email", self.login_var, {}),
            ("Password", self.password_var, {"show": "•"}),
        ]
        self.login_entries = {}
        for row, (label, variable, options) in enumerate(fields, start=1):
            ttk.Label(frame, text=label).grid(row=row, column=0, sticky="w", pady=4)
            entry = ttk.Entry(frame, textvariable=variable, width=36, **options)
            entry.grid(row=row, column=1, pady=4)
            self.login_entries[label] = entry
        self.code_label = ttk.Label(frame, text="Two-factor code")
        self.code_entry = ttk.Entry(frame, textvariable=self.code_var, width=36)
        self.sign_in_button = ttk.Button(frame, text="Sign in", command=self.sign_in)
        self.sign_in_button.grid(row=6, column=1, sticky="e", pady=12)
        self.login_error = ttk.Label(frame, text="", style="Error.TLabel", wraplength=380)
        self.login_error.grid(row=7, columnspan=2)
        for entry in (*self.login_entries.values(), self.code_entry):
            entry.bind("<Return>", lambda _event: self.sign_in())

    def _build_main(self) -> None:
        main = self.main_frame = ttk.Frame(self.root)
        self.connection_label = ttk.Label(main, text="", style="Online.TLabel", anchor="w")
        self.connection_label.pack(side="top", fill="x")
        panes = ttk.PanedWindow(main, orient="horizontal")
        panes.pack(fill="both", expand=True)

        side = ttk.Frame(panes, padding=6)
        self.me_label = ttk.Label(side, text="", style="Title.TLabel")
        self.me_label.pack(anchor="w")
        ttk.Label(side, text="Conversations").pack(anchor="w", pady=(8, 0))
        self.conversation_list = tk.Listbox(side, exportselection=False, height=14, activestyle="none")
        self.conversation_list.pack(fill="both", expand=True)
        self.conversation_list.bind("<<ListboxSelect>>", self._on_select)
        start = ttk.Frame(side)
        start.pack(fill="x", pady=4)
        self.start_var = tk.StringVar()
        self.start_entry = ttk.Entry(start, textvariable=self.start_var)
        self.start_entry.pack(side="left", fill="x", expand=True)
        self.start_entry.bind("<Return>", lambda _event: self.start_conversation())
        ttk.Button(start, text="Open", command=self.start_conversation).pack(side="left")
        ttk.Label(side, text="@username or #channel", foreground="#666").pack(anchor="w")
        ttk.Label(side, text="Online").pack(anchor="w", pady=(8, 0))
        self.online_list = tk.Listbox(side, height=6, activestyle="none")
        self.online_list.pack(fill="x")
        self.unlock_button = ttk.Button(side, text="Unlock encryption…", command=self.ask_passphrase)
        self.unlock_button.pack(fill="x", pady=(8, 0))
        panes.add(side, weight=1)

        pane = ttk.Frame(panes, padding=6)
        header = ttk.Frame(pane)
        header.pack(fill="x")
        self.title_label = ttk.Label(header, text="Pick a conversation", style="Title.TLabel")
        self.title_label.pack(side="left")
        self.subtitle_label = ttk.Label(header, text="", foreground="#555")
        self.subtitle_label.pack(side="left", padx=8)
        self.older_button = ttk.Button(header, text="Load older", command=self.load_older, state="disabled")
        self.older_button.pack(side="right")
        self.key_user: int | None = None
        self.key_notice = ttk.Frame(pane, padding=4)
        self.key_label = ttk.Label(self.key_notice, text="", style="Error.TLabel", wraplength=520)
        self.key_label.pack(side="left", fill="x", expand=True)
        ttk.Button(self.key_notice, text="Trust the new key", command=self.accept_key).pack(side="right")
        self.message_view = tk.Text(
            pane, wrap="word", state="disabled", padx=8, pady=8, cursor="arrow", font="TkTextFont", relief="flat"
        )
        self.message_view.pack(fill="both", expand=True)
        self.message_view.tag_configure("name", font=("TkDefaultFont", 10, "bold"))
        self.message_view.tag_configure("meta", foreground="#777")
        self.message_view.tag_configure("notice", foreground="#b3261e")
        self.typing_label = ttk.Label(pane, text="", foreground="#555")
        self.typing_label.pack(anchor="w")
        composer = ttk.Frame(pane)
        composer.pack(fill="x")
        self.composer_var = tk.StringVar()
        self.composer = ttk.Entry(composer, textvariable=self.composer_var)
        self.composer.pack(side="left", fill="x", expand=True)
        self.composer.bind("<Return>", lambda _event: self.send())
        self.composer.bind("<Key>", self._on_key)
        self.file_button = ttk.Button(composer, text="File…", command=self.send_file)
        self.file_button.pack(side="left", padx=(4, 0))
        self.send_button = ttk.Button(composer, text="Send", command=self.send)
        self.send_button.pack(side="left", padx=(4, 0))
        panes.add(pane, weight=3)
        self.status_label = ttk.Label(self.root, text="", anchor="w", padding=(8, 2))

    def show_login(self) -> None:
        self.main_frame.pack_forget()
        self.login_frame.pack(expand=True)
        self.status_label.pack(side="bottom", fill="x")
        self.login_entries["Username or email"].focus_set()

    def show_main(self) -> None:
        self.login_frame.pack_forget()
        self.status_label.pack_forget()
        self.main_frame.pack(fill="both", expand=True)
        self.status_label.pack(side="bottom", fill="x")
        self.composer.focus_set()

    def status(self, text: str) -> None:
        self.status_label.configure(text=text)

    # Threads

    def background(
        self, work: Callable, done: Callable | None = None, failed: Callable | None = None, *, serial: bool = False
    ) -> None:
        """Run blocking `work()` in a thread; call `done(result)` or `failed(error)` on Tk's thread.

        `serial` work (sends) runs one at a time in order, so messages go out as they were written.
        """

        def run():
            try:
                result = work()
            except Exception as error:  # handed to Tk's thread, shown there
                self._results.put((failed or self.show_error, error))
            else:
                if done is not None:
                    self._results.put((done, result))

        if serial:
            self._serial.submit(run)
        else:
            threading.Thread(target=run, daemon=True).start()

    def poll(self) -> None:
        """Hand finished work and client events to the widgets; runs every POLL_MS on Tk's thread."""
        while True:
            try:
                callback, value = self._results.get_nowait()
            except queue.Empty:
                break
            callback(value)
        if self.chat is not None:
            for event in self.chat.poll_events():
                self.on_event(event)
        self._expire_typing()
        self.root.after(POLL_MS, self.poll)

    def show_error(self, error: Exception) -> None:
        text = error.detail if isinstance(error, ChatterboxError) else str(error)
        self.status(text)
        if self.login_frame.winfo_ismapped():
            self.login_error.configure(text=text)

    # Signing in

    def sign_in(self) -> None:
        server, login, password = self.server_var.get(), self.login_var.get().strip(), self.password_var.get()
        if not login or not password:
            self.login_error.configure(text="Give your username or email and your password.")
            return
        code = self.code_var.get().strip() or None
        self.login_error.configure(text="")
        self.status("Signing in…")
        self.sign_in_button.configure(state="disabled")
        self.background(
            lambda: self._connect(SyncClient.login(server, login, password, code=code)),
            self.signed_in,
            self.not_signed_in,
        )

    @staticmethod
    def _connect(chat: SyncClient) -> SyncClient:
        try:
            chat.connect()
        except BaseException:
            chat.close()
            raise
        return chat

    def not_signed_in(self, error: Exception) -> None:
        self.sign_in_button.configure(state="normal")
        if isinstance(error, TwoFactorRequired):
            self.code_label.grid(row=4, column=0, sticky="w", pady=4)
            self.code_entry.grid(row=4, column=1, pady=4)
            self.code_entry.focus_set()
            self.login_error.configure(text="Enter the code from your authenticator app (or a recovery code).")
            self.status("")
            return
        self.show_error(error)

    def signed_in(self, chat: SyncClient) -> None:
        self.chat = chat
        self.password_var.set("")
        self.code_var.set("")
        self.sign_in_button.configure(state="normal")
        me = chat.me
        self.root.title(f"Chatterbox — {me.get('display_name') or me['username']}")
        self.me_label.configure(text=me.get("display_name") or me["username"])
        self.set_connection("connected")
        self.show_main()
        self.refresh_conversations()
        self.refresh_online()
        self.status("")

    # Conversations and people

    def refresh_conversations(self) -> None:
        conversations = sorted(
            self.chat.conversations.values(), key=lambda c: c.get("last_message_id") or 0, reverse=True
        )
        self.rows = [c["id"] for c in conversations]
        self.conversation_list.delete(0, "end")
        for conversation in conversations:
            mark = {"channel": "#", "group": "+", "direct": "@"}.get(conversation["kind"], "")
            lock = "  (encrypted)" if conversation.get("encrypted") else ""
            unread = conversation.get("unread") or 0
            count = f"  ({unread})" if unread and conversation["id"] != self.current else ""
            self.conversation_list.insert("end", f"{mark} {self.chat.title(conversation)}{lock}{count}")
        if self.current in self.rows:
            self.conversation_list.selection_set(self.rows.index(self.current))

    def refresh_online(self) -> None:
        people = {}
        for conversation in self.chat.conversations.values():
            for member in conversation.get("members", []):
                if member["id"] in self.chat.online and member["id"] != self.chat.me["id"]:
                    people[member["id"]] = member.get("display_name") or member["username"]
        self.online_list.delete(0, "end")
        for name in sorted(people.values(), key=str.lower):
            self.online_list.insert("end", f"● {name}")

    def _on_select(self, _event=None) -> None:
        selection = self.conversation_list.curselection()
        if selection:
            self.open_conversation(self.rows[selection[0]])

    def start_conversation(self) -> None:
        target = self.start_var.get().strip()
        if not target:
            return
        self.background(lambda: self.chat.resolve(target), self._opened)

    def _opened(self, conversation: dict) -> None:
        self.start_var.set("")
        self.refresh_conversations()
        self.open_conversation(conversation["id"])

    def open_conversation(self, conversation_id: int) -> None:
        self.current = conversation_id
        conversation = self.chat.conversations[conversation_id]
        conversation["unread"] = 0
        self.title_label.configure(text=self.chat.title(conversation))
        members = len(conversation.get("members", []))
        kind = {"channel": "public channel", "group": "group", "direct": "direct message"}[conversation["kind"]]
        privacy = "end-to-end encrypted" if conversation.get("encrypted") else "not encrypted"
        self.subtitle_label.configure(text=f"{kind} · {members} members · {privacy}")
        self.refresh_conversations()
        self.typing_label.configure(text="")
        self.background(
            lambda: self.chat.history(conversation_id, limit=50), lambda page: self._history(conversation_id, page)
        )
        self.composer.focus_set()

    def _history(self, conversation_id: int, page) -> None:
        messages, has_more = page
        self._fold_reactions(messages)
        known = {message.id for message in messages}
        # Live messages that came in while the page loaded stay.
        later = [m for m in self.shown.get(conversation_id, []) if m.id not in known and m.id > max(known, default=0)]
        self.shown[conversation_id] = [*messages, *later]
        self.has_older[conversation_id] = has_more
        if conversation_id == self.current:
            self.render()
            if self.shown[conversation_id]:
                self.background(lambda: self.chat.mark_read(conversation_id, self.shown[conversation_id][-1].id))

    def load_older(self) -> None:
        shown = self.shown.get(self.current) or []
        if not shown:
            return
        conversation_id = self.current

        def older(page):
            messages, has_more = page
            self._fold_reactions(messages)
            self.shown[conversation_id] = [*messages, *self.shown[conversation_id]]
            self.has_older[conversation_id] = has_more
            if conversation_id == self.current:
                self.render()

        self.background(lambda: self.chat.history(conversation_id, before=shown[0].id, limit=50), older)

    def _fold_reactions(self, messages: list[Message]) -> None:
        """Take the reactions a page of history carries: on its plaintext messages, or as encrypted
        reaction messages (in the order sent) pointing at the messages they react to."""
        for message in messages:
            if message.kind == "reaction":
                if message.reaction is not None:
                    reaction = message.reaction
                    self._react(
                        reaction["message"], (message.sender or {}).get("id"), reaction["emoji"], reaction["on"]
                    )
            elif not message.encrypted:
                self.reactions[message.id] = {emoji: list(ids) for emoji, ids in message.reactions.items()}

    def _react(self, message_id: int, user_id: int | None, emoji: str, on: bool) -> None:
        if user_id is None:
            return
        users = self.reactions.setdefault(message_id, {}).setdefault(emoji, [])
        if on and user_id not in users:
            users.append(user_id)
        elif not on and user_id in users:
            users.remove(user_id)

    # The message view

    def render(self) -> None:
        view = self.message_view
        view.configure(state="normal")
        view.delete("1.0", "end")
        for message in self.shown.get(self.current, []):
            self._insert(message)
        view.configure(state="disabled")
        view.see("end")
        self.older_button.configure(state="normal" if self.has_older.get(self.current) else "disabled")

    def _insert(self, message: Message) -> None:
        view = self.message_view
        if message.kind == "reaction":
            return
        if message.kind == "system":
            view.insert("end", f"— {message.text or 'membership changed'} —\n", "meta")
            return
        view.insert("end", message.sender_name, "name")
        edited = " (edited)" if message.edited_at else ""
        view.insert("end", f"  {message.created_at[11:16]}{edited}\n", "meta")
        if message.deleted:
            view.insert("end", "This message was deleted.\n\n", "meta")
            return
        if message.text is None:
            reasons = {"locked": "Unlock encryption to read this message.", "untrusted": "The sender's key changed."}
            view.insert("end", reasons.get(message.status, "This message could not be decrypted.") + "\n\n", "notice")
            return
        if message.text:
            view.insert("end", message.text + "\n")
        if message.attachment:
            self._insert_attachment(message)
        reactions = [(emoji, len(ids)) for emoji, ids in self.reactions.get(message.id, {}).items() if ids]
        if reactions:
            view.insert("end", "   ".join(f"{emoji} {count}" for emoji, count in reactions) + "\n", "meta")
        view.insert("end", "\n")

    def _insert_attachment(self, message: Message) -> None:
        attachment = message.attachment
        name = attachment.get("name") or "file"
        kind = attachment.get("type") or attachment.get("content_type") or ""
        thumbnail = self.thumbnails.get(message.id)
        if thumbnail is not None:
            self.message_view.image_create("end", image=thumbnail, padx=2, pady=4)
            self.message_view.insert("end", f"\n{name}\n", "meta")
            return
        size = attachment.get("size")
        self.message_view.insert("end", f"Attachment: {name}" + (f" ({size:,} bytes)" if size else "") + "\n", "meta")
        if kind in IMAGE_TYPES and message.id not in self.loading:
            self.loading.add(message.id)
            self.background(
                lambda: self.chat.download(message, thumbnail=True), lambda data: self._thumbnail(message, data)
            )

    def _thumbnail(self, message: Message, data: bytes) -> None:
        from PIL import Image, ImageTk, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                image.thumbnail(THUMBNAIL_SIZE)
                self.thumbnails[message.id] = ImageTk.PhotoImage(image.convert("RGBA"))
        except (UnidentifiedImageError, OSError):
            return
        if message.conversation == self.current:
            self.render()

    # Sending

    def send(self) -> None:
        text = self.composer_var.get().strip()
        if not text or self.current is None:
            return
        conversation_id = self.current
        self.composer_var.set("")

        def failed(error):
            self.composer_var.set(text)
            if isinstance(error, EncryptionLocked):
                self.ask_passphrase()
            self.show_error(error)

        self.background(
            lambda: self.chat.send(conversation_id, text), lambda message: self.status(""), failed, serial=True
        )
        return "break"

    def send_file(self, path: str | None = None) -> None:
        if self.current is None:
            return
        path = path or filedialog.askopenfilename(parent=self.root, title="Send a file or picture")
        if not path:
            return
        conversation_id, text = self.current, self.composer_var.get().strip()
        self.composer_var.set("")
        self.status(f"Sending {Path(path).name}…")
        self.background(
            lambda: self.chat.send_file(conversation_id, path, text), lambda message: self.status(""), serial=True
        )

    def _on_key(self, event) -> None:
        if self.current is None or event.keysym in {"Return", "Tab"}:
            return
        if time.monotonic() - self.typed_at > TYPING_INTERVAL:
            self.typed_at = time.monotonic()
            conversation_id = self.current
            self.background(lambda: self.chat.typing(conversation_id))

    def ask_passphrase(self) -> None:
        passphrase = simpledialog.askstring(
            "Unlock encryption", "Your encryption passphrase:", show="•", parent=self.root
        )
        if passphrase:
            self.unlock(passphrase)

    def unlock(self, passphrase: str) -> None:
        self.status("Unlocking your key…")

        def unlocked(_):
            self.status("End-to-end encryption is unlocked.")
            self.unlock_button.configure(text="Encryption unlocked", state="disabled")
            for conversation_id in list(self.shown):
                self.shown[conversation_id] = [self.chat.reveal(m.raw) for m in self.shown[conversation_id]]
            self.render()

        def failed(error):
            if isinstance(error, NoKeyBackup):
                self.offer_setup()
            else:
                self.show_error(error)

        self.background(lambda: self.chat.unlock(passphrase), unlocked, failed)

    def offer_setup(self) -> None:
        """Make a key pair for an account that has none yet (as the browser's "Set up encryption")."""
        first = simpledialog.askstring(
            "Set up encryption",
            "You have no encryption key yet. Choose an encryption passphrase (not your password):",
            show="•",
            parent=self.root,
        )
        if not first:
            return
        if (
            simpledialog.askstring("Set up encryption", "Type the passphrase again:", show="•", parent=self.root)
            != first
        ):
            self.status("The two passphrases do not match.")
            return
        self.status("Creating your key…")
        self.background(lambda: self.chat.setup_encryption(first), lambda _: self.unlock(first))

    # Events from the server

    def on_event(self, event: Event) -> None:
        handler = getattr(self, "_event_" + event.type.replace(".", "_"), None)
        if handler is not None:
            handler(event)

    def _event_message(self, event: Event) -> None:
        message = event.message
        shown = self.shown.get(message.conversation)
        if shown is None and message.conversation == self.current:
            # Its history is still loading: keep the message for _history to put after the page.
            shown = self.shown[message.conversation] = []
        if shown is not None and all(m.id != message.id for m in shown):
            shown.append(message)
        self.typing.pop((message.conversation, event.user), None)
        if message.conversation == self.current:
            self.chat.conversations[message.conversation]["unread"] = 0
            self.render()
            if event.user != self.chat.me["id"]:
                self.background(lambda: self.chat.mark_read(message.conversation, message.id))
        self.refresh_conversations()

    def _event_edited(self, event: Event) -> None:
        shown = self.shown.get(event.conversation, [])
        self.shown[event.conversation] = [event.message if m.id == event.message.id else m for m in shown]
        if event.conversation == self.current:
            self.render()

    def _event_deleted(self, event: Event) -> None:
        for message in self.shown.get(event.conversation, []):
            if message.id == event.data["id"]:
                message.deleted = True
        if event.conversation == self.current:
            self.render()

    def _event_reaction(self, event: Event) -> None:
        self._react(event.data["message"], event.user, event.data["emoji"], event.data["on"])
        if event.conversation == self.current:
            self.render()

    def _event_typing(self, event: Event) -> None:
        self.typing[(event.conversation, event.user)] = time.monotonic()
        self._expire_typing()

    def _expire_typing(self) -> None:
        if self.chat is None or self.current is None:
            return
        now = time.monotonic()
        names = []
        for (conversation_id, user_id), at in list(self.typing.items()):
            if now - at > TYPING_SHOWN:
                del self.typing[(conversation_id, user_id)]
            elif conversation_id == self.current:
                members = self.chat.conversations.get(conversation_id, {}).get("members", [])
                names += [m.get("display_name") or m["username"] for m in members if m["id"] == user_id]
        text = f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} typing…" if names else ""
        if self.typing_label.cget("text") != text:
            self.typing_label.configure(text=text)

    def _event_presence(self, event: Event) -> None:
        self.refresh_online()

    def _event_conversation_added(self, event: Event) -> None:
        self.refresh_conversations()
        self.refresh_online()

    _event_conversation_updated = _event_conversation_added

    def _event_conversation_removed(self, event: Event) -> None:
        if event.conversation == self.current:
            self.current = None
            self.title_label.configure(text="You are no longer in that conversation.")
            self.shown.pop(event.conversation, None)
            self.render()
        self.refresh_conversations()

    def _event_key_changed(self, event: Event) -> None:
        members = [m for c in self.chat.conversations.values() for m in c.get("members", []) if m["id"] == event.user]
        name = (members[0].get("display_name") or members[0]["username"]) if members else f"user {event.user}"
        number = self.chat.safety_number(event.user)
        self.key_user = event.user
        self.key_label.configure(
            text=f"{name}'s encryption key changed. Compare the safety number with them before you trust it: {number}"
        )
        self.key_notice.pack(fill="x", before=self.message_view)

    def accept_key(self) -> None:
        if self.key_user is not None:
            self.chat.accept_key(self.key_user)
        self.key_user = None
        self.key_notice.pack_forget()

    def _event_state(self, event: Event) -> None:
        self.set_connection(event.data["state"], event.data.get("retry_in"))

    def set_connection(self, state: str, retry_in=None) -> None:
        if state == "reconnecting":
            wait = f" Trying again in {retry_in:.0f} s." if retry_in else " Trying again…"
            text, style = "The server is unreachable: reconnecting." + wait, "Offline.TLabel"
        else:
            text = STATE_TEXT.get(state, state)
            style = "Online.TLabel" if state == "connected" else "Offline.TLabel"
        self.connection_label.configure(text=text, style=style)
        self.connection_state = state
        if state in {"signed_out", "banned"}:
            chat, self.chat = self.chat, None
            self.show_login()
            self.login_error.configure(text=text)
            if chat is not None:
                threading.Thread(target=chat.close, daemon=True).start()
        if self.chat is not None:
            if state == "connected":
                self.refresh_online()
            else:
                # Nobody's presence is known while we are away from the server.
                self.online_list.delete(0, "end")

    def close(self) -> None:
        if self.chat is not None:
            self.chat.close()
            self.chat = None
        self._serial.shutdown(wait=False)
        self.root.destroy()


def main() -> None:
    root = tk.Tk()
    app = ChatApp(root)
    root.protocol("WM_DELETE_WINDOW", app.close)
    root.mainloop()
