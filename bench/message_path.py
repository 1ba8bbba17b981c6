"""Benchmark the message path through a real server process: ack latency and fan-out throughput.

    .venv/bin/python bench/message_path.py                 # embedded: SQLite + in-memory layer
    .venv/bin/python bench/message_path.py --postgres-redis # PostgreSQL + Redis on 127.0.0.1
    .venv/bin/python bench/message_path.py --server daphne  # Daphne instead of the default Uvicorn

It makes a fresh database, one public channel with --clients members each holding an open socket,
then (1) one member sends --messages messages one at a time, each waiting for its ack, and
(2) the same member sends a burst without waiting, and every member must receive all of it.
Only loopback addresses are used; every wait is bounded.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatterbox import serve  # noqa: E402 - the checkout's own package, found through ROOT

TIMEOUT = 60
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "chatterbox_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(args, workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH"}}
    env.update({"DEBUG": "1", "CHAT_RATE_LIMIT": "off", "MEDIA_ROOT": str(workdir / "media"), "LOG_LEVEL": "WARNING"})
    if args.postgres_redis:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}")
            admin.execute(f"CREATE DATABASE {PG_BENCH_DB}")
        env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
        env["REDIS_URL"] = "redis://127.0.0.1:6379/15"
        env["CHANNEL_LAYER_PREFIX"] = "chatterbox-bench"
        env["CHANNEL_LAYER_CAPACITY"] = "10000"
    else:
        env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    return env


def prepare(env: dict, clients: int) -> list[str]:
    """Migrate, make the users and their channel, and return one session cookie per user."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatterbox.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from chat import services

    call_command("migrate", verbosity=0)
    if env.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    users = [User.objects.create_user(f"bench{i}", password=None) for i in range(clients)]
    channel, _ = services.conversation_create(creator=users[0], kind="channel", name="bench")
    for user in users[1:]:
        services.channel_join(user=user, conversation_id=channel.pk)
    cookies = []
    for user in users:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        cookies.append(client.cookies["sessionid"].value)
    return cookies, channel.pk


async def open_sockets(url: str, cookies: list[str]):
    from websockets.asyncio.client import connect

    sockets = []
    for cookie in cookies:
        ws = await connect(
            url.replace("http://", "ws://") + "/ws/",
            origin=url,
            additional_headers={"Cookie": f"sessionid={cookie}"},
            proxy=None,
            open_timeout=TIMEOUT,
            max_queue=None,
        )
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert hello["type"] == "hello", hello
        sockets.append(ws)
    return sockets


async def receive_until(ws, predicate) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if predicate(frame):
            return frame


async def run(url: str, cookies: list[str], channel_id: int, messages: int) -> dict:
    sockets = await open_sockets(url, cookies)
    sender = sockets[0]
    latencies = []
    for i in range(messages):
        client_id = f"seq-{i}"
        started = time.perf_counter()
        await sender.send(
            json.dumps(
                {"type": "message.send", "conversation": channel_id, "client_id": client_id, "body": f"hello {i}"}
            )
        )
        await receive_until(sender, lambda f, c=client_id: f["type"] == "message.ack" and f["client_id"] == c)
        latencies.append((time.perf_counter() - started) * 1000)
    # Drain what the sequential phase delivered to everyone.
    for ws in sockets:
        await receive_until(
            ws, lambda f: f["type"] == "message.new" and f["message"]["client_id"] == f"seq-{messages - 1}"
        )

    started = time.perf_counter()
    for i in range(messages):
        await sender.send(
            json.dumps(
                {"type": "message.send", "conversation": channel_id, "client_id": f"burst-{i}", "body": f"burst {i}"}
            )
        )

    async def all_delivered(ws):
        seen = set()
        while len(seen) < messages:
            frame = await receive_until(ws, lambda f: f["type"] == "message.new")
            seen.add(frame["message"]["id"])

    await asyncio.gather(*(all_delivered(ws) for ws in sockets))
    burst_seconds = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    latencies.sort()
    return {
        "ack_p50_ms": statistics.median(latencies),
        "ack_p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "burst_messages_per_s": messages / burst_seconds,
        "burst_deliveries_per_s": messages * len(sockets) / burst_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-redis", action="store_true", help="use PostgreSQL and Redis on 127.0.0.1")
    parser.add_argument("--clients", type=int, default=20, help="members with an open socket (default 20)")
    parser.add_argument("--messages", type=int, default=300, help="messages per phase (default 300)")
    parser.add_argument("--server", default=serve.DEFAULT_SERVER, choices=serve.SERVERS, help="ASGI server")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chatterbox-bench-"))
    env = bench_env(args, workdir)
    cookies, channel_id = prepare(env, args.clients)
    port = free_port()
    log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        serve.command(server=args.server, host="127.0.0.1", port=port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"server did not start; see {workdir / 'server.log'}") from None
                time.sleep(0.1)
        figures = asyncio.run(run(f"http://127.0.0.1:{port}", cookies, channel_id, args.messages))
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    path = "PostgreSQL + Redis" if args.postgres_redis else "SQLite + in-memory layer"
    print(f"Message path, one {args.server} process, {path}: ", end="")
    print(f"{args.clients} sockets in one channel, {args.messages} messages")
    print(f"  send -> ack, one at a time:   p50 {figures['ack_p50_ms']:.1f} ms, p95 {figures['ack_p95_ms']:.1f} ms")
    print(
        f"  burst, all delivered to all:  {figures['burst_messages_per_s']:.0f} messages/s "
        f"({figures['burst_deliveries_per_s']:.0f} deliveries/s)"
    )
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
