"""Fixtures for the Python client's tests: tokens, connected clients, and a server of their own."""

import pytest

from accounts import tokens
from client import SyncClient
from client.keys import KeyStore
from tests.conftest import ServerProcess, server_env


@pytest.fixture(autouse=True)
def _config_dir(tmp_path, monkeypatch):
    """Keep every file the client writes (tokens, pinned keys) inside the test's own directory."""
    monkeypatch.setenv("CHATTERBOX_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("CHATTERBOX_SERVER", "CHATTERBOX_TOKEN", "CHATTERBOX_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def token_for():
    def make(user, name="test client"):
        return tokens.token_create(user=user, name=name)[1]

    return make


@pytest.fixture
def connect_as(token_for):
    """Return a connected SyncClient for a user (by token, pinned keys in memory); closed at the end."""
    opened = []

    def connect(url, user, **options):
        chat = SyncClient(url, token=token_for(user), keystore=KeyStore(), backoff_base=0.2, backoff_max=2, **options)
        opened.append(chat)
        chat.connect(timeout=30)
        return chat

    yield connect
    for chat in opened:
        chat.close()


@pytest.fixture
def own_server(transactional_db, artifacts_dir, server_media_root, settings):
    """A Daphne process of this test's own, which the test may restart on the same port."""
    settings.MEDIA_ROOT = server_media_root
    servers = [ServerProcess(server_env(server_media_root), artifacts_dir / "daphne-client.log")]

    class Handle:
        url = servers[0].url

        @staticmethod
        def restart():
            servers[-1].stop()
            servers.append(ServerProcess(server_env(server_media_root), servers[0].log_path, port=servers[0].port))

        @staticmethod
        def stop():
            servers[-1].stop()

    yield Handle
    servers[-1].stop()
