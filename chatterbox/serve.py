"""Serve chatterbox.asgi: the one place that says how Uvicorn, Gunicorn or Daphne runs it.

    python -m chatterbox.serve [--host H] [--port P] [--workers N] [--proxy-headers] [--server daphne]

bin/serve, the Procfile, the live-server tests and bench/run.py all start the server through
`command()` or this module's main, so what the tests and the benchmark run is what ships.

One Uvicorn worker runs in this process; more run under Gunicorn with `UvicornWorker`, all on one
port. Uvicorn closes its WebSockets with 1012 when it stops (SIGTERM), so clients reconnect to
another process and sync; `chatterbox.daphne_server` makes Daphne do the same.
"""

import argparse
import os
import sys

from uvicorn_worker import UvicornWorker as BaseUvicornWorker

SERVERS = ("uvicorn", "daphne")
# Measured on this app with bench/run.py (docs/performance.md): Uvicorn spends less than half
# Daphne's server CPU per delivery in channel fan-out.
DEFAULT_SERVER = "uvicorn"
APPLICATION = "chatterbox.asgi:application"
# Frames up to this size reach the consumer, which answers those past WS_MAX_FRAME_BYTES with
# `too_large`; larger ones are cut by the server (close 1009).
WEBSOCKET_MAX_BYTES = 1024 * 1024
# Daphne refuses a handshake the application has not accepted within 5 s; after a process stops,
# its clients reconnect to the others at once, and a refusal only sends them round again. (Uvicorn
# sets no such limit.)
DAPHNE_HANDSHAKE_SECONDS = 60
# How long a stopping process waits for its requests and socket handlers before cancelling them.
GRACEFUL_SECONDS = 10
# Trusted to set X-Forwarded-For/-Proto: a proxy on this host always; with --proxy-headers, a PaaS
# router on a private network too. The client is the rightmost address not in these networks, so
# what a client writes itself further left is ignored. FORWARDED_ALLOW_IPS replaces both lists.
LOCAL_PROXIES = "127.0.0.1,::1"
PRIVATE_PROXIES = LOCAL_PROXIES + ",10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

# What Uvicorn needs for this app, under either launcher. Per-message deflate is off: its zlib
# state costs tens of KiB per idle socket, and frames are small JSON. Channels does not speak the
# lifespan protocol.
UVICORN_OPTIONS = {
    "ws_per_message_deflate": False,
    "ws_max_size": WEBSOCKET_MAX_BYTES,
    "lifespan": "off",
    "proxy_headers": True,
    "timeout_graceful_shutdown": GRACEFUL_SECONDS,
}


class UvicornWorker(BaseUvicornWorker):
    """Gunicorn's worker for this app: Uvicorn with UVICORN_OPTIONS."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", **UVICORN_OPTIONS}


def command(
    *, server: str = DEFAULT_SERVER, host: str, port: int, workers: int = 1, proxy_headers: bool = False
) -> list[str]:
    """Return the command line that serves Chatterbox on host:port."""
    argv = [sys.executable, "-m", "chatterbox.serve", "--server", server, "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers)]
    return [*argv, "--proxy-headers"] if proxy_headers else argv


def forwarded_allow_ips(proxy_headers: bool) -> str:
    return os.environ.get("FORWARDED_ALLOW_IPS") or (PRIVATE_PROXIES if proxy_headers else LOCAL_PROXIES)


def serve_uvicorn(args, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        APPLICATION,
        host=args.host,
        port=args.port,
        forwarded_allow_ips=forwarded_allow_ips(args.proxy_headers),
        log_level=log_level,
        **UVICORN_OPTIONS,
    )


def serve_gunicorn(args, log_level: str) -> None:
    argv = [sys.executable, "-m", "gunicorn", "-k", "chatterbox.serve.UvicornWorker", "-w", str(args.workers)]
    argv += ["-b", f"{args.host}:{args.port}", "--forwarded-allow-ips", forwarded_allow_ips(args.proxy_headers)]
    # Gunicorn kills a worker this long after asking it to stop; the worker's own timeout comes first.
    argv += ["--graceful-timeout", str(GRACEFUL_SECONDS + 5), "--log-level", log_level]
    # No gunicornc control socket: its default path is one per user, shared by every Gunicorn there.
    argv += ["--no-control-socket", APPLICATION]
    os.execv(sys.executable, argv)  # noqa: S606 - this interpreter, arguments built above


def serve_daphne(args, log_level: str) -> None:
    from chatterbox.daphne_server import CommandLineInterface

    argv = ["-b", args.host, "-p", str(args.port), "--websocket-max-message-size", str(WEBSOCKET_MAX_BYTES)]
    argv += ["--websocket_connect_timeout", str(DAPHNE_HANDSHAKE_SECONDS)]
    # Daphne's verbosity 1 writes an access log line per request and socket; 0 only warnings.
    argv += ["-v", "0" if log_level in {"warning", "error", "critical"} else "1"]
    if args.proxy_headers:
        # Daphne trusts these headers from anyone and takes the leftmost address; see README.
        argv.append("--proxy-headers")
    CommandLineInterface().run([*argv, APPLICATION])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chatterbox.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default=os.environ.get("ASGI_SERVER") or DEFAULT_SERVER)
    parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 1))
    parser.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* from private networks")
    args = parser.parse_args(argv)
    if args.server not in SERVERS:
        # argparse checks choices given on the command line, not a default from ASGI_SERVER.
        parser.error(f"ASGI_SERVER must be one of {', '.join(SERVERS)}, not {args.server!r}")
    log_level = (os.environ.get("LOG_LEVEL") or "info").lower()
    if args.workers > 1 and not os.environ.get("REDIS_URL"):
        # The in-memory channel layer lives in one process: sockets of another would miss events.
        parser.error(f"{args.workers} workers need REDIS_URL (and a shared DATABASE_URL)")
    if args.workers > 1 and args.server == "daphne":
        parser.error("Daphne serves one process per port; run several behind a proxy (README, Deployment)")
    if args.server == "daphne":
        serve_daphne(args, log_level)
    elif args.workers > 1:
        serve_gunicorn(args, log_level)
    else:
        serve_uvicorn(args, log_level)


if __name__ == "__main__":
    main()
