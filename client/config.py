"""Where the client keeps its files: the user's config directory (XDG), every file mode 0600.

`credentials.json` holds one API token per server (never a password); `keys/` holds the
pinned contact keys per server and user (client.keys.KeyStore).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path

from client.keys import write_private


def config_dir() -> Path:
    """$CHATTERBOX_CONFIG_DIR, else $XDG_CONFIG_HOME/chatterbox, else ~/.config/chatterbox."""
    if os.environ.get("CHATTERBOX_CONFIG_DIR"):
        return Path(os.environ["CHATTERBOX_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chatterbox"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _server_slug(server: str) -> str:
    parts = urllib.parse.urlsplit(server)
    readable = "".join(c if c.isalnum() else "_" for c in parts.netloc)
    return f"{readable}-{hashlib.sha256(server.encode()).hexdigest()[:8]}"


def keystore_path(server: str, user_id: int, keys_dir: Path | None = None) -> Path:
    return (keys_dir or config_dir() / "keys") / f"{_server_slug(server)}-{int(user_id)}.json"


def load_credentials() -> dict:
    path = credentials_path()
    if not path.exists():
        return {"servers": {}}
    stored = json.loads(path.read_text())
    stored.setdefault("servers", {})
    return stored


def save_token(server: str, *, username: str, token: str) -> Path:
    """Store the token for a server (and make it the default); return the file's path."""
    stored = load_credentials()
    stored["servers"][server] = {"username": username, "token": token}
    stored["default"] = server
    path = credentials_path()
    write_private(path, json.dumps(stored, indent=1))
    return path


def forget_token(server: str) -> bool:
    stored = load_credentials()
    if stored["servers"].pop(server, None) is None:
        return False
    if stored.get("default") == server:
        stored["default"] = next(iter(stored["servers"]), None)
    write_private(credentials_path(), json.dumps(stored, indent=1))
    return True


def stored_login(server: str | None) -> tuple[str | None, dict | None]:
    """Return (server, {username, token}) for the given server, or for the default one."""
    stored = load_credentials()
    server = server or stored.get("default")
    return server, stored["servers"].get(server) if server else None
