"""The link-preview fetcher against real HTTP servers on 127.0.0.1, and the preview API.

Loopback is refused by default like every non-public address; tests that need a successful
fetch allow 127.0.0.1/32 through LINK_PREVIEW_TEST_NETWORKS (a DEBUG-only setting).
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chat import previews
from chat.models import LinkPreview, Message
from chat.previews import PreviewRefused, address_allowed, fetch_preview
from tests.chat.conftest import make_channel, make_group

PAGE = (
    b"<!doctype html><html><head><title>Plain title</title>"
    b'<meta property="og:title" content="The &amp; Title">'
    b'<meta name="description" content="What the page is about.">'
    b'<meta property="og:site_name" content="Example Site">'
    b"</head><body><script>alert(1)</script></body></html>"
)


class Site:
    """A tiny HTTP server on 127.0.0.1 whose routes are (status, headers, body or callable)."""

    def __init__(self):
        self.routes = {}
        self.hits = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.hits.append(self.path)
                status, headers, body = site.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    if callable(body):
                        body(self.wfile)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    server = Site()
    yield server
    server.close()


@pytest.fixture
def loopback_allowed(settings):
    settings.LINK_PREVIEW_TEST_NETWORKS = ["127.0.0.1/32"]


HTML = {"Content-Type": "text/html; charset=utf-8"}


def test_loopback_is_refused_by_default_and_never_contacted(site):
    site.routes["/"] = (200, HTML, PAGE)
    for url in (
        f"{site.url}/",
        site.url.replace("127.0.0.1", "localhost") + "/",
        site.url.replace("127.0.0.1", "[::1]"),
    ):
        with pytest.raises(PreviewRefused, match="not a public address"):
            fetch_preview(url)
    assert site.hits == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "192.0.2.1",
        "198.18.0.1",
    ],
)
def test_private_loopback_link_local_and_special_addresses_are_refused(address):
    assert not address_allowed(address)
    host = f"[{address}]" if ":" in address else address
    # Refused before any connection is tried: no packet leaves for these addresses.
    with pytest.raises(PreviewRefused, match="not a public address"):
        fetch_preview(f"http://{host}/")


def test_public_addresses_are_allowed():
    for address in ("93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"):
        assert address_allowed(address), address


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://example.com/",
        "//example.com/",
        "http://user:pass@example.com/",
        "http:///nohost",
        "http://[::1/",
        "data:text/html,hi",
    ],
)
def test_only_plain_http_and_https_urls(url):
    with pytest.raises(PreviewRefused):
        fetch_preview(url)


def test_a_page_gives_its_title_description_and_site(site, loopback_allowed):
    site.routes["/page"] = (200, HTML, PAGE)
    preview = fetch_preview(f"{site.url}/page")
    assert preview == {
        "title": "The & Title",
        "description": "What the page is about.",
        "site_name": "Example Site",
        "final_url": f"{site.url}/page",
    }
    assert site.hits == ["/page"]


def test_redirects_are_followed_and_checked_at_every_hop(site, loopback_allowed):
    site.routes["/old"] = (301, {"Location": "/new"}, b"")
    site.routes["/new"] = (200, HTML, PAGE)
    assert fetch_preview(f"{site.url}/old")["final_url"] == f"{site.url}/new"

    # A redirect to a private or link-local address is refused without contacting it.
    other = Site()
    try:
        other.routes["/"] = (200, HTML, PAGE)
        hidden = other.url.replace("127.0.0.1", "127.0.0.2")
        for target in (
            f"{hidden}/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "file:///etc/passwd",
        ):
            site.routes["/jump"] = (302, {"Location": target}, b"")
            with pytest.raises(PreviewRefused):
                fetch_preview(f"{site.url}/jump")
        assert other.hits == []
    finally:
        other.close()


def test_redirect_loops_stop(site, loopback_allowed, settings):
    site.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(PreviewRefused, match="Too many redirects"):
        fetch_preview(f"{site.url}/loop")
    assert len(site.hits) == settings.LINK_PREVIEW_MAX_REDIRECTS + 1


def test_only_the_first_bytes_are_read(site, loopback_allowed, settings):
    settings.LINK_PREVIEW_MAX_BYTES = 64 * 1024
    sent = []

    def endless(out):
        out.write(b"<html><head><title>Big</title></head><body>")
        for _ in range(2000):  # up to 16 MB, stopped by the client hanging up
            out.write(b"x" * 8192)
            sent.append(8192)

    site.routes["/big"] = (200, HTML, endless)
    started = time.monotonic()
    assert fetch_preview(f"{site.url}/big")["title"] == "Big"
    assert time.monotonic() - started < 3
    # A title past the cap is never seen.
    padding = b"<html><head>" + b"<!-- pad -->" * 10_000 + b"<title>Too late</title></head></html>"
    site.routes["/late"] = (200, HTML, padding)
    with pytest.raises(PreviewRefused, match="no title"):
        fetch_preview(f"{site.url}/late")


def test_a_slow_page_is_cut_off_at_the_time_limit(site, loopback_allowed, settings):
    settings.LINK_PREVIEW_TIMEOUT = 1

    def drip(out):
        for _ in range(40):
            out.write(b" ")
            out.flush()
            time.sleep(0.1)

    site.routes["/slow"] = (200, HTML, drip)
    started = time.monotonic()
    with pytest.raises(PreviewRefused, match="too long"):
        fetch_preview(f"{site.url}/slow")
    assert time.monotonic() - started < 2


def test_non_html_and_error_pages_give_no_preview(site, loopback_allowed):
    site.routes["/image"] = (200, {"Content-Type": "image/png"}, b"\x89PNG")
    site.routes["/gone"] = (410, HTML, PAGE)
    with pytest.raises(PreviewRefused, match="Not an HTML page"):
        fetch_preview(f"{site.url}/image")
    with pytest.raises(PreviewRefused, match="410"):
        fetch_preview(f"{site.url}/gone")


@pytest.mark.django_db
def test_preview_api_for_members_cached_and_opt_out(site, loopback_allowed, alice, bob, carol, client_of):
    site.routes["/doc"] = (200, HTML, PAGE)
    channel = make_channel(alice, bob)
    message = Message.objects.create(conversation=channel, sender=alice, client_id="a", body=f"read {site.url}/doc")
    quiet = Message.objects.create(conversation=channel, sender=alice, client_id="b", body=f"read <{site.url}/doc>")
    plain = Message.objects.create(conversation=channel, sender=alice, client_id="c", body="no links here")

    answer = client_of(bob).get(f"/api/messages/{message.pk}/preview/")
    assert answer.status_code == 200
    assert answer.json() == {
        "url": f"{site.url}/doc",
        "title": "The & Title",
        "description": "What the page is about.",
        "site_name": "Example Site",
    }
    # Cached: asking again (anyone) does not fetch again.
    assert client_of(alice).get(f"/api/messages/{message.pk}/preview/").status_code == 200
    assert site.hits == ["/doc"]
    assert LinkPreview.objects.get().ok
    # The sender opted out by writing <url>; a message without links has none either.
    assert client_of(bob).get(f"/api/messages/{quiet.pk}/preview/").status_code == 204
    assert client_of(bob).get(f"/api/messages/{plain.pk}/preview/").status_code == 204
    # Not a member: as if the message did not exist.
    refused = client_of(carol).get(f"/api/messages/{message.pk}/preview/")
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    assert site.hits == ["/doc"]


@pytest.mark.django_db
def test_no_previews_in_encrypted_conversations_and_failures_are_cached(site, alice, bob, client_of):
    group = make_group(alice, bob, encrypted=True)
    sealed = Message.objects.create(conversation=group, sender=alice, client_id="x", body=f"{site.url}/doc")
    from chat.models import MessageKey

    MessageKey.objects.create(message=sealed, user=bob, key="k")
    answer = client_of(bob).get(f"/api/messages/{sealed.pk}/preview/")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid"

    # Loopback is refused (no test networks here): no preview, remembered, never fetched.
    channel = make_channel(alice, bob, name="links")
    local = Message.objects.create(conversation=channel, sender=alice, client_id="y", body=f"{site.url}/doc")
    for _ in range(2):
        assert client_of(bob).get(f"/api/messages/{local.pk}/preview/").status_code == 204
    assert site.hits == []
    assert LinkPreview.objects.get().ok is False


def test_the_test_networks_need_debug():
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='chatterbox.settings'; django.setup()",
        ],
        env={
            "DEBUG": "0",
            "SECRET_KEY": "x" * 60,
            "ALLOWED_HOSTS": "a.example",
            "LINK_PREVIEW_TEST_NETWORKS": "127.0.0.1/32",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        cwd=previews.settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert "LINK_PREVIEW_TEST_NETWORKS is for tests only" in result.stderr
