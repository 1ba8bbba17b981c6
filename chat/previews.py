"""Link previews for plaintext conversations, fetched by the server with a strict fetcher.

The fetcher is built against server-side request forgery:
- only `http` and `https` URLs, without credentials;
- the host is resolved once, every address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, shared or unspecified, IPv4-mapped forms included),
  and the connection goes to that checked address, so a second DNS answer cannot swap it;
- redirects are followed by hand, at most LINK_PREVIEW_MAX_REDIRECTS, each hop checked the same;
- at most LINK_PREVIEW_MAX_BYTES are read, within LINK_PREVIEW_TIMEOUT seconds in all (a server
  that drips bytes is cut off), and only HTML is parsed (<title> and Open Graph tags; no images,
  so readers' browsers never contact the linked site).

Results are cached (LinkPreview) by URL, failures too for a shorter while. Encrypted
conversations never get previews: the server cannot read their links. A sender opts a message
out by writing the link in angle brackets, `<https://…>` (docs/protocol.md).
"""

import hashlib
import http.client
import ipaddress
import socket
import ssl
import time
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from chat.models import LinkPreview, Message
from chatterbox.errors import Invalid, NotFound
from client.markdown import first_preview_link

TITLE_MAX = 200
DESCRIPTION_MAX = 500
SITE_NAME_MAX = 100
URL_MAX = 2000
CACHE_OK = timedelta(hours=24)
CACHE_FAILED = timedelta(hours=1)
USER_AGENT = "Chatterbox-LinkPreview/1.0 (+link previews for a chat message)"
HTML_TYPES = {"text/html", "application/xhtml+xml"}
REDIRECTS = {301, 302, 303, 307, 308}
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address in IPv6 clothing: judge the IPv4 one


class PreviewRefused(Exception):
    """The URL may not be fetched (scheme, address, redirect) or gave no usable page."""


def preview_for_message(*, user: User, message_id: int) -> dict | None:
    """Return the preview of a message's first link for a member, or None when it has none."""
    message = Message.objects.visible_to(user).filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    if message.conversation.encrypted:
        raise Invalid("Encrypted conversations have no link previews.")
    if not settings.LINK_PREVIEWS or message.deleted or message.kind != Message.Kind.TEXT:
        return None
    url = first_preview_link(message.body)
    if url is None or len(url) > URL_MAX:
        return None
    return link_preview(url)


def link_preview(url: str) -> dict | None:
    """Return {url, title, description, site_name} for a URL from the cache or a fresh fetch, or None."""
    key = hashlib.sha256(url.encode()).hexdigest()
    cached = _cached(key)
    if cached is not None:
        return cached.as_json() if cached.ok else None
    # Every reader of a new message asks at once: one of them fetches, the others wait for it.
    lock = f"link-preview:{key}"
    if not cache.add(lock, 1, timeout=settings.LINK_PREVIEW_TIMEOUT + 5):
        deadline = time.monotonic() + settings.LINK_PREVIEW_TIMEOUT + 1
        while time.monotonic() < deadline:
            time.sleep(0.1)
            cached = _cached(key)
            if cached is not None:
                return cached.as_json() if cached.ok else None
        return None
    try:
        # Another reader may have stored it between the first look and taking the lock.
        cached = _cached(key)
        if cached is not None:
            return cached.as_json() if cached.ok else None
        return _fetch_and_store(url, key)
    finally:
        cache.delete(lock)


def _cached(key: str) -> LinkPreview | None:
    row = LinkPreview.objects.filter(url_hash=key).first()
    if row and timezone.now() - row.fetched_at < (CACHE_OK if row.ok else CACHE_FAILED):
        return row
    return None


def _fetch_and_store(url: str, key: str) -> dict | None:
    now = timezone.now()
    try:
        found = fetch_preview(url)
    except PreviewRefused:
        found = None
    fields = {"url": url, "fetched_at": now, "ok": found is not None, **(found or {})}
    fields.update({name: (fields.get(name) or "") for name in ("title", "description", "site_name")})
    fields.pop("final_url", None)
    row, _ = LinkPreview.objects.update_or_create(url_hash=key, defaults=fields)
    return row.as_json() if row.ok else None


def fetch_preview(url: str) -> dict:
    """Fetch a page under the rules above and return its preview fields, or raise PreviewRefused."""
    deadline = time.monotonic() + settings.LINK_PREVIEW_TIMEOUT
    for _ in range(settings.LINK_PREVIEW_MAX_REDIRECTS + 1):
        status, headers, body = _get(url, deadline)
        if status in REDIRECTS:
            location = headers.get("location")
            if not location:
                raise PreviewRefused("A redirect without a location.")
            url = urljoin(url, location.strip())
            continue
        if status != 200:
            raise PreviewRefused(f"The page answered {status}.")
        content_type, _, parameters = (headers.get("content-type") or "").partition(";")
        if content_type.strip().lower() not in HTML_TYPES:
            raise PreviewRefused("Not an HTML page.")
        page = _parse(body.decode(_charset(parameters), errors="replace"))
        if not page["title"] and not page["description"]:
            raise PreviewRefused("The page has no title.")
        return {**page, "final_url": url}
    raise PreviewRefused("Too many redirects.")


def address_allowed(address: str) -> bool:
    """Return True for a public address (or one of the test networks a DEBUG server allows)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip in NAT64:
        ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            ip = mapped
    for network in settings.LINK_PREVIEW_TEST_NETWORKS:
        if ip in ipaddress.ip_network(network, strict=False):
            return True
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _target(url: str) -> tuple[str, str, int, str, str]:
    """Check a URL and resolve its host; return (scheme, host, port, checked address, path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PreviewRefused("Not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise PreviewRefused("Only http and https links get previews.")
    if parts.username is not None or parts.password is not None:
        raise PreviewRefused("Links with credentials get no preview.")
    host = parts.hostname
    if not host:
        raise PreviewRefused("The link has no host.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise PreviewRefused("The host does not resolve.") from None
    addresses = [info[4][0] for info in infos]
    # Every answer must be allowed: a name that resolves to one public and one private address is refused.
    if not addresses or not all(address_allowed(address) for address in addresses):
        raise PreviewRefused("The host is not a public address.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, addresses[0], path


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand, whatever the host name resolves to now."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), timeout=self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        raw = socket.create_connection((self.address, self.port), timeout=self.timeout)
        # The certificate is checked against the host name, not the address we connected to.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _get(url: str, deadline: float) -> tuple[int, dict, bytes]:
    scheme, host, port, address, path = _target(url)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PreviewRefused("The page took too long.")
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, address=address, timeout=min(remaining, settings.LINK_PREVIEW_TIMEOUT))
    try:
        connection.request(
            "GET",
            path,
            headers={"User-Agent": USER_AGENT, "Accept": "text/html", "Accept-Encoding": "identity"},
        )
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        body = b"" if response.status in REDIRECTS else _read_capped(response, deadline)
        return response.status, headers, body
    except (OSError, http.client.HTTPException, ssl.SSLError) as error:
        raise PreviewRefused(f"The page could not be fetched: {error.__class__.__name__}.") from None
    finally:
        connection.close()


def _read_capped(response, deadline: float) -> bytes:
    """Read at most LINK_PREVIEW_MAX_BYTES before the deadline; a page's head is all we need."""
    cap = settings.LINK_PREVIEW_MAX_BYTES
    chunks, size = [], 0
    while size < cap:
        if time.monotonic() > deadline:
            raise PreviewRefused("The page took too long.")
        chunk = response.read1(min(16 * 1024, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _charset(parameters: str) -> str:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"


class _HeadParser(HTMLParser):
    """Collect <title> and the description and Open Graph <meta> tags of a page's head."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.meta = {}
        self.title = []
        self.in_title = False
        self.done = False

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag == "title":
            self.in_title = True
        elif tag == "meta":
            attributes = {name.lower(): value or "" for name, value in attrs}
            name = (attributes.get("property") or attributes.get("name") or "").lower()
            if name in {"og:title", "og:description", "og:site_name", "description"} and name not in self.meta:
                self.meta[name] = attributes.get("content", "")
        elif tag == "body":
            self.done = True

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data):
        if self.in_title and not self.done:
            self.title.append(data)


def _parse(html: str) -> dict:
    parser = _HeadParser()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser gives up on some broken markup; keep what it found
        pass

    def clean(text, limit):
        text = " ".join((text or "").split())
        return text if len(text) <= limit else f"{text[: limit - 1]}…"

    return {
        "title": clean(parser.meta.get("og:title") or "".join(parser.title), TITLE_MAX),
        "description": clean(parser.meta.get("og:description") or parser.meta.get("description"), DESCRIPTION_MAX),
        "site_name": clean(parser.meta.get("og:site_name"), SITE_NAME_MAX),
    }
