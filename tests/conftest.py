"""Shared fixtures: users, signed-in clients, and a real ASGI server for browser and socket tests."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.core.cache import cache
from django.db import connection

from chatterbox import serve

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]

# Playwright's sync API runs an event loop in the test's thread; Django's ORM guard would
# then refuse the test's own (synchronous) queries.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Presence follows a socket's close at once in tests (servers they start inherit this), except
# where a test sets a grace of its own (tests/chat/test_consumer.py).
os.environ.setdefault("PRESENCE_OFFLINE_GRACE", "0")


@pytest.fixture(autouse=True)
def _presence_at_once(settings):
    settings.PRESENCE_OFFLINE_GRACE = float(os.environ["PRESENCE_OFFLINE_GRACE"])


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Start every test with an empty cache, so rate limits and presence do not leak."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Give every test its own channel layer object.

    Each async test runs on a new event loop, and channels-redis binds its locks and pools to the
    loop that first used them; a layer shared across tests fails at random on a later loop.
    """
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, password: str = PASSWORD, email: str | None = None, **fields):
        user = django_user_model.objects.create_user(
            username=username, email=email or f"{username}@example.com", password=password, **fields
        )
        return user

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", display_name="Alice Liddell")


@pytest.fixture
def bob(make_user):
    return make_user("bob", display_name="Bob Builder")


@pytest.fixture
def client_of(client):
    """Return a test client signed in as the given user (a fresh client per call)."""
    from django.test import Client

    def sign_in(user):
        signed_in = Client()
        signed_in.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return signed_in

    return sign_in


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(media_root: Path) -> dict:
    """Return the environment for a server process that shares the test database and Redis."""
    db = connection.settings_dict
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "SQLITE_PATH"}}
    env.update({"DEBUG": "1", "MEDIA_ROOT": str(media_root), "PYTHONUNBUFFERED": "1"})
    # Browser tests seal key backups with Argon2id INTERACTIVE, not the default MODERATE, to stay fast.
    env.setdefault("E2E_KDF_LIMITS", "interactive")
    # Every test browser comes from 127.0.0.1: per-address limits would count them all together.
    env.setdefault("RATE_LIMIT_ADDRESS_FACTOR", "1000")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return env


def asgi_server_name() -> str:
    """Return the server the live tests run: TEST_ASGI_SERVER (uvicorn or daphne), else what ships."""
    name = os.environ.get("TEST_ASGI_SERVER") or serve.DEFAULT_SERVER
    if name not in serve.SERVERS:
        raise pytest.UsageError(f"TEST_ASGI_SERVER must be one of {', '.join(serve.SERVERS)}, not {name!r}")
    return name


class ServerProcess:
    """A server process serving chatterbox.asgi on a free port of 127.0.0.1, started as bin/serve does."""

    def __init__(
        self,
        env: dict,
        log_path: Path,
        name: str = "server",
        port: int | None = None,
        *,
        server: str | None = None,
        workers: int = 1,
    ):
        # A restart passes the port it had, so clients reconnect to the same address.
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "a" if port else "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            serve.command(server=server or asgi_server_name(), host="127.0.0.1", port=self.port, workers=workers),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start within {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session", autouse=True)
def _release_test_database(django_db_setup, django_db_blocker):
    """End leftover PostgreSQL sessions so that the test database can be dropped at the end.

    Servers are stopped by then; what remains are this process's own connections opened in other
    contexts (Playwright's greenlets, executor threads), which Django's per-context handles can't reach.
    """
    yield
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def server_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-media")


@pytest.fixture(scope="session")
def asgi_server(django_db_setup, django_db_blocker, artifacts_dir, server_media_root):
    """One real server process for the session, on the same test database as the tests."""
    with django_db_blocker.unblock():
        env = server_env(server_media_root)
    server = ServerProcess(env, artifacts_dir / "daphne.log")
    yield server
    server.stop()


@pytest.fixture
def live_url(asgi_server, transactional_db, settings, server_media_root, request):
    """The base URL of the real server; data the test writes is committed and visible to it."""
    settings.MEDIA_ROOT = server_media_root
    yield asgi_server.url
    # Before the database is emptied for the next test: close the browser contexts the test left
    # open, so that their sockets stop writing while the flush locks table after table (a socket
    # still marking messages read would deadlock with it on PostgreSQL).
    if "browser" in request.fixturenames:
        for context in list(request.getfixturevalue("browser").contexts):
            context.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1200, "height": 800}}


def pytest_collection_modifyitems(items):
    """Mark browser tests (those in tests/browser/ and any using Playwright's browser) and run them last.

    Playwright's sync API leaves an event loop running in the main thread for as long as its
    session-scoped browser lives; async tests that come after it could not start their own.
    """
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "tests/browser/" in str(item.fspath) or "browser" in fixtures or "page" in fixtures:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
