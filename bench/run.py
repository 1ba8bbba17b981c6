"""The message-path benchmark: every scenario, against Chatterbox and two yardsticks, in one run.

    .venv/bin/python bench/run.py            # the full run (a few minutes on 2 cores)
    .venv/bin/python bench/run.py --smoke    # seconds: tiny sizes, checks 0 lost and 0 stuck only

Targets: Chatterbox embedded (SQLite + in-memory layer), Chatterbox on PostgreSQL + Redis
(127.0.0.1, database `bench_chatterbox`, Redis DB 14; BENCH_PG_ADMIN_URL, BENCH_PG_DB,
BENCH_REDIS_URL, BENCH_PREFIX and BENCH_FLUSH_REDIS=1 (empty that Redis DB first) change them),
the Channels tutorial consumer (bench/tutorial.py) and a bare `websockets` server
(bench/bare_server.py). Each server runs on core 0 (taskset), this load generator on core 1.
Scenarios:

- S1 fan-out: a 100-member and a 500-member channel, 10 senders at rising rates; deliveries/s,
  send-to-delivery latency p50/p99/max, lost, server CPU per delivery.
- S2 1:1: 100 pairs, each first member sending to the second; persisted messages/s and latency.
- S3 idle: 1,000 sockets (five per member of the S2 pairs) opened 50 at a time; seconds to open
  them all, server CPU per socket (and the event loop's share of it), KiB of server RSS each.
- S4 reconnect storm (Chatterbox only): 500 sockets in 5 channels, then 1,000 in 10, dropped at
  once while messages flow; seconds until all are back and synced, lost, duplicates and stuck
  sockets.
- S5 processes (Chatterbox on PostgreSQL + Redis only): S2's pairs at rising rates against one
  server process and then against two on one port (Gunicorn's workers, as `WEB_CONCURRENCY=2`
  runs them), with nothing pinned: the servers, this load generator, PostgreSQL and Redis share
  the machine's cores. The kernel hands each socket to either process, so about half the pairs
  talk across processes through Redis. Server CPU counts every process of the server.

Results: a Markdown table in bench/results/RESULTS.md (with the machine's description) and
latency-against-rate plots as SVG. Figures on a shared or busy machine are noisy; the ratios to
the yardsticks, measured in the same run under the same pinning, are the steadier part.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatterbox import serve  # noqa: E402 - the checkout's own package, found through ROOT

RESULTS = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BENCH_DB = os.environ.get("BENCH_PG_DB", "bench_chatterbox")
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
OPEN_TIMEOUT = 30
# Seconds between opening a scenario's sockets and its first measured step, for every target alike.
SETTLE_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(command: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *command]
    return command


def cpu_seconds(pid: int, *, main_thread: bool = False) -> float:
    """CPU time of the process, or of its main thread only (the event loop, without worker threads)."""
    stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_times() -> tuple[int, int]:
    """Busy and total jiffies of every core together, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def descendants(pid: int) -> list[int]:
    """The pids of a process's children, their children and so on."""
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


class Server:
    """One server on core 0 (or on any core), with its CPU and memory readable from /proc."""

    def __init__(self, name: str, command: list[str], env: dict, port: int, workdir: Path, core: int | None = 0):
        self.name, self.port = name, port
        self.log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command if core is None else pinned(command, core),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()  # a server that started too late must not outlive the run
                    raise SystemExit(f"{name} did not start; see {workdir / (name + '.log')}") from None
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        # taskset execs the server, so the pid is the server's own.
        return self.process.pid

    def cpu(self) -> float:
        """CPU seconds of the server: its process and the workers it started."""
        total = 0.0
        for pid in [self.pid, *descendants(self.pid)]:
            with contextlib.suppress(OSError):  # a process that ended between the listing and the read
                total += cpu_seconds(pid)
        return total

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Target:
    """How the load generator talks to one kind of server."""

    name = ""
    persistent = False

    async def open(self, member) -> object:
        raise NotImplementedError

    def send_frame(self, member, room, payload: str, seq: int) -> str:
        raise NotImplementedError

    def payload_of(self, frame: dict) -> str | None:
        raise NotImplementedError


class Chatterbox(Target):
    persistent = True

    def __init__(self, name: str, config: str, workdir: Path, server_cmd: str, workers: int = 1):
        self.name = name
        self.config = config
        self.workdir = workdir
        self.server_cmd = server_cmd
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH"}}
        self.env.update({"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60, "ALLOWED_HOSTS": "127.0.0.1"})
        self.env.update({"SECURE_SSL_REDIRECT": "0", "CHAT_RATE_LIMIT": "off", "LOG_LEVEL": "WARNING"})
        self.env.update({"CHANNEL_LAYER_CAPACITY": "10000", "MEDIA_ROOT": str(workdir / "media")})
        if config == "pg":
            self.env["DATABASE_URL"] = urlunsplit(urlsplit(PG_ADMIN_URL)._replace(path=f"/{PG_BENCH_DB}"))
            prefix = os.environ.get("BENCH_PREFIX", "bench")
            self.env.update({"REDIS_URL": BENCH_REDIS_URL, "CHANNEL_LAYER_PREFIX": prefix, "CACHE_KEY_PREFIX": prefix})
        else:
            self.env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")

    def prepare(self, spec: dict) -> dict:
        """Start from an empty database with the scenario's users and conversations."""
        if self.config == "pg":
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
                admin.execute(f"CREATE DATABASE {PG_BENCH_DB}")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(self.env["SQLITE_PATH"] + suffix).unlink(missing_ok=True)
        output = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "prepare.py"), json.dumps(spec)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(output.stdout)

    def start(self, core: int | None = 0) -> Server:
        port = free_port()
        self.url = f"ws://127.0.0.1:{port}/ws/"
        # The command bin/serve and the Procfile run.
        command = serve.command(server=self.server_cmd, host="127.0.0.1", port=port, workers=self.workers)
        return Server(self.name, command, self.env, port, self.workdir, core)

    async def open(self, member):
        from websockets.asyncio.client import connect

        ws = await connect(
            self.url,
            origin="http://127.0.0.1",
            additional_headers={"Cookie": f"sessionid={member}"},
            proxy=None,
            open_timeout=OPEN_TIMEOUT,
            max_queue=None,
            compression=None,
        )
        hello = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
        assert hello["type"] == "hello", hello
        return ws

    def send_frame(self, member, room, payload, seq):
        return json.dumps({"type": "message.send", "conversation": room, "client_id": payload[-60:], "body": payload})

    def payload_of(self, frame):
        if frame.get("type") == "message.new":
            return frame["message"]["body"]
        return None


class Yardstick(Target):
    """The tutorial consumer or the bare server: rooms by URL path, frames relayed as they are."""

    def __init__(self, name: str, path: str):
        self.name = name
        self.path = path

    def prepare(self, spec: dict) -> dict:
        result, room = {"channels": [], "pairs": []}, 0
        for members in spec.get("channels", []):
            room += 1
            result["channels"].append({"id": room, "cookies": [room] * members})
        for _ in range(spec.get("pairs", 0)):
            room += 1
            result["pairs"].append({"id": room, "cookies": [room, room]})
        return result

    async def open(self, member):
        from websockets.asyncio.client import connect

        return await connect(
            self.url + self.path.format(room=member),
            proxy=None,
            open_timeout=OPEN_TIMEOUT,
            max_queue=None,
            compression=None,
        )

    def send_frame(self, member, room, payload, seq):
        return json.dumps({"body": payload})

    def payload_of(self, frame):
        return frame.get("body")


class Tutorial(Yardstick):
    """The tutorial consumer, served by the same ASGI server as Chatterbox in this run."""

    def __init__(self, workdir: Path, server_cmd: str):
        super().__init__("channels-tutorial", "ws/r{room}/")
        self.workdir, self.server_cmd = workdir, server_cmd

    def start(self) -> Server:
        port = free_port()
        self.url = f"ws://127.0.0.1:{port}/"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if self.server_cmd == "uvicorn":
            command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"]
            command += ["--ws-per-message-deflate", "false", "--log-level", "warning", "bench.tutorial:application"]
        else:
            command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            command += ["--websocket_connect_timeout", "60", "bench.tutorial:application"]
        return Server(self.name, command, env, port, self.workdir)


class Bare(Yardstick):
    def __init__(self, workdir: Path):
        super().__init__("bare-websockets", "r{room}")
        self.workdir = workdir

    def start(self) -> Server:
        port = free_port()
        self.url = f"ws://127.0.0.1:{port}/"
        command = [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(port)]
        return Server(self.name, command, dict(os.environ), port, self.workdir)


class Receiver:
    """Reads one socket, timing every delivery whose payload this run sent."""

    def __init__(self, target: Target, ws, sent: dict):
        self.target, self.ws, self.sent = target, ws, sent
        self.latencies: list[float] = []
        self.ids: list[str] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for text in self.ws:
                now = time.perf_counter()
                payload = self.target.payload_of(json.loads(text))
                if payload is not None and payload in self.sent:
                    self.latencies.append((now - self.sent[payload]) * 1000)
                    self.ids.append(payload)
        except Exception:
            pass


async def open_many(target: Target, members: list, concurrency: int = 50) -> list:
    from websockets.exceptions import InvalidHandshake

    semaphore = asyncio.Semaphore(concurrency)

    async def one(member):
        async with semaphore:
            for attempt in range(3):
                try:
                    return await target.open(member)
                except (OSError, TimeoutError, InvalidHandshake):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.5)

    return await asyncio.gather(*(one(member) for member in members))


async def settle() -> None:
    """Let the server finish what opening the sockets started (hellos, presence) before measuring."""
    await asyncio.sleep(SETTLE_SECONDS)


async def rate_step(target, server, senders, receivers, expected_per_message, rate, seconds, room_of, sent):
    """Send at `rate` messages/s for `seconds` from the senders in turn; wait for the deliveries.

    The load generator's own garbage collector is held off meanwhile, for every target alike: its
    pauses (tens of ms) would otherwise be measured as the server's latency.
    """
    gc.collect()
    gc.disable()
    try:
        return await _rate_step(target, server, senders, receivers, expected_per_message, rate, seconds, sent)
    finally:
        gc.enable()


async def _rate_step(target, server, senders, receivers, expected_per_message, rate, seconds, sent):
    count = max(1, int(rate * seconds))
    before = {id(r): len(r.ids) for r in receivers}
    cpu_before, machine_before = server.cpu(), machine_times()
    start = time.perf_counter()
    tag = f"{target.name[:10]}-{rate}-{time.monotonic_ns()}"
    for seq in range(count):
        due = start + seq / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ws, member, room = senders[seq % len(senders)]
        payload = f"{tag}-{seq}"
        sent[payload] = time.perf_counter()
        await ws.send(target.send_frame(member, room, payload, seq))
    expected = count * expected_per_message
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        got = sum(len(r.ids) - before[id(r)] for r in receivers)
        if got >= expected:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = server.cpu() - cpu_before
    busy, total = (after - before for after, before in zip(machine_times(), machine_before, strict=True))
    got = sum(len(r.ids) - before[id(r)] for r in receivers)
    latencies = [lat for r in receivers for lat in r.latencies[before[id(r)] :]]
    return {
        "rate": rate,
        "messages": count,
        "deliveries": got,
        "lost": max(0, expected - got),
        "deliveries_per_s": got / elapsed,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "cpu_us_per_delivery": cpu / max(got, 1) * 1e6,
        "machine_busy": busy / max(total, 1),
    }


async def scenario_fanout(target, server, channel, rates, seconds):
    sent: dict[str, float] = {}
    sockets = await open_many(target, channel["cookies"])
    receivers = [Receiver(target, ws, sent) for ws in sockets]
    senders = [(sockets[i], channel["cookies"][i], channel["id"]) for i in range(min(10, len(sockets)))]
    await settle()
    steps = []
    for rate in rates:
        step = await rate_step(target, server, senders, receivers, len(sockets), rate, seconds, None, sent)
        steps.append(step)
        if step["lost"] or step["p99"] > 100:
            break
    for ws in sockets:
        await ws.close()
    return steps


async def scenario_pairs(target, server, pairs, rates, seconds):
    sent: dict[str, float] = {}
    firsts = await open_many(target, [pair["cookies"][0] for pair in pairs])
    seconds_ = await open_many(target, [pair["cookies"][1] for pair in pairs])
    receivers = [Receiver(target, ws, sent) for ws in seconds_]
    # The senders' own sockets are read too (acks, echoes) so that nothing backs up.
    echo = [Receiver(target, ws, {}) for ws in firsts]
    senders = [(firsts[i], pair["cookies"][0], pair["id"]) for i, pair in enumerate(pairs)]
    await settle()
    steps = []
    for rate in rates:
        step = await rate_step(target, server, senders, receivers, 1, rate, seconds, None, sent)
        steps.append(step)
        if step["lost"] or step["p99"] > 100:
            break
    for ws in firsts + seconds_:
        await ws.close()
    del echo
    return steps


async def scenario_idle(target, server, members):
    # One socket first, so that lazily loaded code is not counted as per-socket memory.
    warm = await target.open(members[0])
    await asyncio.sleep(0.5)
    rss_before = rss_kib(server.pid)
    cpu_before, loop_before = cpu_seconds(server.pid), cpu_seconds(server.pid, main_thread=True)
    start = time.perf_counter()
    sockets = await open_many(target, members)
    opened = time.perf_counter() - start
    cpu = cpu_seconds(server.pid) - cpu_before
    loop = cpu_seconds(server.pid, main_thread=True) - loop_before
    await asyncio.sleep(1.0)
    rss_after = rss_kib(server.pid)
    for ws in [warm, *sockets]:
        await ws.close()
    return {
        "sockets": len(sockets),
        "open_s": opened,
        "cpu_ms_per_socket": cpu * 1000 / len(sockets),
        "loop_cpu_ms_per_socket": loop * 1000 / len(sockets),
        "kib_per_socket": (rss_after - rss_before) / len(sockets),
    }


async def scenario_storm(target, server, channels, seconds_flowing):
    """Drop every member socket at once while one sender per channel keeps sending."""
    from websockets.exceptions import ConnectionClosed

    class Member:
        def __init__(self, cookie, conversation):
            self.cookie, self.conversation = cookie, conversation
            self.timeline: list[int] = []
            self.duplicates = 0
            self.ws = None
            self.synced_at = None

        def take(self, message, held=False):
            if not self.timeline or message["id"] > self.timeline[-1]:
                self.timeline.append(message["id"])
            elif not held:
                self.duplicates += 1

        async def run(self, stop):
            while not stop():
                try:
                    self.ws = await target.open(self.cookie)
                    held, has_more = [], True
                    while has_more:
                        after = self.timeline[-1] if self.timeline else 0
                        await self.ws.send(
                            json.dumps({"type": "sync", "conversation": self.conversation, "after": after})
                        )
                        while (frame := json.loads(await self.ws.recv()))["type"] != "sync.result":
                            if frame["type"] == "message.new":
                                held.append(frame["message"])
                        for message in frame["messages"]:
                            self.take(message, held=True)
                        has_more = frame["has_more"]
                    for message in held:
                        self.take(message, held=True)
                    self.synced_at = time.perf_counter()
                    while not stop():
                        try:
                            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 0.5))
                        except TimeoutError:
                            continue
                        if frame["type"] == "message.new":
                            self.take(frame["message"])
                    await self.ws.close()
                except (ConnectionClosed, OSError, TimeoutError):
                    await asyncio.sleep(0.05)

    members = [Member(cookie, channel["id"]) for channel in channels for cookie in channel["cookies"][1:]]
    senders = [await target.open(channel["cookies"][0]) for channel in channels]
    newest = {"id": None}
    tasks = [
        asyncio.create_task(
            m.run(lambda m=m: newest["id"] is not None and m.timeline and m.timeline[-1] >= newest["id"])
        )
        for m in members
    ]
    deadline = time.perf_counter() + 120
    while any(m.synced_at is None for m in members) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    acked = []

    async def flow(ws, channel, seconds):
        end = time.perf_counter() + seconds
        seq = 0
        while time.perf_counter() < end:
            await ws.send(
                json.dumps(
                    {
                        "type": "message.send",
                        "conversation": channel["id"],
                        "client_id": f"s{time.monotonic_ns()}",
                        "body": "storm",
                    }
                )
            )
            while (frame := json.loads(await ws.recv()))["type"] != "message.ack":
                pass
            acked.append((channel["id"], frame["id"]))
            seq += 1
            await asyncio.sleep(0.1)

    flowing = [
        asyncio.create_task(flow(ws, channel, seconds_flowing)) for ws, channel in zip(senders, channels, strict=True)
    ]
    await asyncio.sleep(1.0)
    dropped_at = time.perf_counter()
    for m in members:
        m.synced_at = None
        if m.ws is not None:
            m.ws.transport.abort()
    while any(m.synced_at is None for m in members) and time.perf_counter() < dropped_at + 60:
        await asyncio.sleep(0.05)
    back = [m.synced_at - dropped_at for m in members if m.synced_at is not None]
    await asyncio.gather(*flowing)
    final = {cid: max(mid for c, mid in acked if c == cid) for cid in {c for c, _ in acked}}
    newest["id"] = max(final.values())
    for m in members:
        m.target_id = final[m.conversation]
    # Each member stops once it has its own channel's newest message.
    settle = time.perf_counter() + 30
    while time.perf_counter() < settle and any(not m.timeline or m.timeline[-1] < m.target_id for m in members):
        await asyncio.sleep(0.1)
    stuck = sum(1 for m in members if not m.timeline or m.timeline[-1] < m.target_id)
    lost = 0
    for m in members:
        mine = sorted(mid for c, mid in acked if c == m.conversation)
        lost += len(set(mine) - set(m.timeline))
    newest["id"] = 0
    for task in tasks:
        task.cancel()
    for ws in senders:
        await ws.close()
    return {
        "sockets": len(members),
        "all_back_s": max(back) if len(back) == len(members) else float("inf"),
        "p50_back_s": statistics.median(back) if back else float("nan"),
        "lost": lost,
        "duplicates": sum(m.duplicates for m in members),
        "stuck": stuck,
        "messages": len(acked),
    }


def sizes(smoke: bool) -> dict:
    if smoke:
        return {
            "fan": [20],
            "fan_rates": [[5, 10]],
            "pairs": 10,
            "pair_rates": [20],
            "idle": 40,
            "storms": [[2, 10]],
            "process_rates": [20],
            "seconds": 1.0,
            "storm_s": 3.0,
        }
    return {
        "fan": [100, 500],
        "fan_rates": [[10, 20, 40, 80, 150, 200, 300], [4, 8, 16, 30, 40, 60]],
        "pairs": 100,
        "pair_rates": [50, 100, 200, 400, 800, 1200, 1600, 2000, 2500, 3000],
        "idle": 1000,
        # 500 sockets (the bench) and 1,000 (its target), 100 per channel.
        "storms": [[5, 100], [10, 100]],
        "process_rates": [2000, 2500, 3000, 3500, 4000],
        "seconds": 2.0,
        "storm_s": 5.0,
    }


async def run_target(target, size, results):
    name = target.name
    channels = size["fan"]
    # One sender per storm channel besides its members.
    storm_channels = [members + 1 for count, members in size["storms"] for _ in range(count)]
    spec = {
        "channels": channels + (storm_channels if target.persistent else []),
        "pairs": size["pairs"],
    }
    prepared = target.prepare(spec)
    server = target.start()
    try:
        wanted = size["scenarios"]
        for index, members in enumerate(channels if "S1" in wanted else []):
            steps = await scenario_fanout(
                target, server, prepared["channels"][index], size["fan_rates"][index], size["seconds"]
            )
            results.setdefault(f"S1 fan-out, {members} members", {})[name] = steps
        if "S2" in wanted:
            steps = await scenario_pairs(target, server, prepared["pairs"], size["pair_rates"], size["seconds"])
            results.setdefault(f"S2 1:1, {size['pairs']} pairs", {})[name] = steps
        # Idle sockets of people in small conversations: five tabs for each member of the pairs.
        pair_members = [cookie for pair in prepared["pairs"] for cookie in pair["cookies"]]
        members = (pair_members * (size["idle"] // len(pair_members) + 1))[: size["idle"]]
        if "S3" in wanted:
            idle = await scenario_idle(target, server, members)
            results.setdefault(f"S3 idle, {size['idle']} sockets", {})[name] = idle
        start = len(channels)
        for count, _ in size["storms"] if target.persistent and "S4" in wanted else []:
            storm = prepared["channels"][start : start + count]
            start += count
            results.setdefault(f"S4 storm, {sum(len(c['cookies']) - 1 for c in storm)} sockets", {})[
                name
            ] = await scenario_storm(target, server, storm, size["storm_s"])
    finally:
        server.stop()


async def run_processes(workdir: Path, server_cmd: str, size: dict, results: dict) -> None:
    """S5: S2's pairs against one server process, then two on one port, with nothing pinned."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        for workers in (1, 2):
            name = f"chatterbox-pg-redis-{workers}-process{'es' if workers > 1 else ''}"
            target = Chatterbox(name, "pg", workdir, server_cmd, workers=workers)
            prepared = target.prepare({"pairs": size["pairs"]})
            server = target.start(core=None)
            try:
                steps = await scenario_pairs(target, server, prepared["pairs"], size["process_rates"], size["seconds"])
            finally:
                server.stop()
            results.setdefault(f"S5 processes, {size['pairs']} pairs", {})[name] = steps
    finally:
        os.sched_setaffinity(0, allowed)


def best_step(steps: list[dict]) -> dict:
    """The highest rate that lost nothing with p99 under 100 ms, or the first step if none did."""
    good = [s for s in steps if not s["lost"] and s["p99"] <= 100]
    return max(good, key=lambda s: s["deliveries_per_s"]) if good else steps[0]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{platform.platform()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load average {load[0]:.1f} at start"
    )


def ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.2f}" if theirs else "-"


def rate_table(by_target: dict) -> list[str]:
    lines = [
        "| target | best rate (msgs/s) | deliveries/s | p50 ms | p99 ms | max ms | lost | CPU us/delivery "
        "| deliveries/s vs tutorial, vs bare | CPU/delivery vs tutorial, vs bare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bests = {name: best_step(steps) for name, steps in by_target.items()}
    tutorial, bare = bests.get("channels-tutorial"), bests.get("bare-websockets")
    for name, best in bests.items():
        rates = cpus = "-"
        if name.startswith("chatterbox") and tutorial and bare:
            rate = best["deliveries_per_s"]
            rates = f"{ratio(rate, tutorial['deliveries_per_s'])}, {ratio(rate, bare['deliveries_per_s'])}"
            cpu = best["cpu_us_per_delivery"]
            cpus = f"{ratio(cpu, tutorial['cpu_us_per_delivery'])}, {ratio(cpu, bare['cpu_us_per_delivery'])}"
        lines.append(
            f"| {name} | {best['rate']} | {best['deliveries_per_s']:.0f} | {best['p50']:.1f} | {best['p99']:.1f} "
            f"| {best['max']:.1f} | {best['lost']} | {best['cpu_us_per_delivery']:.0f} | {rates} | {cpus} |"
        )
    return lines + every_step(by_target)


def every_step(by_target: dict, *, busy: bool = False) -> list[str]:
    """One line per target with each step's figures (and, if `busy`, the share of the machine's cores in use)."""
    what = "rate -> deliveries/s, p99 ms, lost, CPU us/delivery" + (", the machine's cores busy" if busy else "")
    lines = ["", f"Every step: {what}.", ""]
    for name, steps in by_target.items():
        cells = "; ".join(
            f"{s['rate']} -> {s['deliveries_per_s']:.0f}/s, {s['p99']:.0f} ms, {s['lost']}, "
            f"{s['cpu_us_per_delivery']:.0f}" + (f", {s['machine_busy']:.0%}" if busy else "")
            for s in steps
        )
        lines.append(f"- {name}: {cells}")
    return lines


def processes_table(by_target: dict) -> list[str]:
    lines = [
        "| server | best rate (msgs/s) | deliveries/s | p50 ms | p99 ms | max ms | lost "
        "| CPU us/delivery, all processes | deliveries/s vs one process "
        "| most deliveries/s at any step, vs one process |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bests = {name: best_step(steps) for name, steps in by_target.items()}
    one = next(iter(bests.values()))
    peaks = {name: max(s["deliveries_per_s"] for s in steps) for name, steps in by_target.items()}
    one_peak = next(iter(peaks.values()))
    for name, best in bests.items():
        lines.append(
            f"| {name} | {best['rate']} | {best['deliveries_per_s']:.0f} | {best['p50']:.1f} | {best['p99']:.1f} "
            f"| {best['max']:.1f} | {best['lost']} | {best['cpu_us_per_delivery']:.0f} "
            f"| {ratio(best['deliveries_per_s'], one['deliveries_per_s'])} "
            f"| {peaks[name]:.0f}, {ratio(peaks[name], one_peak)} |"
        )
    return lines + every_step(by_target, busy=True)


def report(results: dict, smoke: bool, started_load: str) -> str:
    lines = [f"# Message-path benchmark{' (smoke)' if smoke else ''}", "", f"Machine: {started_load}", ""]
    lines.append("Server on core 0, load generator on core 1. Ratios: Chatterbox's figure / the yardstick's.")
    lines.append("Best rate: the highest step with nothing lost and p99 at most 100 ms (else the first step).")
    lines.append("")
    for scenario, by_target in results.items():
        lines += [f"## {scenario}", ""]
        if scenario.startswith(("S1", "S2")):
            lines += rate_table(by_target)
        elif scenario.startswith("S5"):
            lines += ["Nothing pinned: the servers, the load generator, PostgreSQL and Redis share every core.", ""]
            lines += processes_table(by_target)
        elif scenario.startswith("S3"):
            lines.append(
                "| target | open all (s) | server CPU per socket (ms) | of it, the event loop's | KiB per socket "
                "| open time vs tutorial | KiB vs tutorial |"
            )
            lines.append("|---|---|---|---|---|---|---|")
            tutorial = by_target.get("channels-tutorial")
            for name, figures in by_target.items():
                vs_open = vs_kib = "-"
                if tutorial and name.startswith("chatterbox"):
                    vs_open = ratio(figures["open_s"], tutorial["open_s"])
                    vs_kib = ratio(figures["kib_per_socket"], tutorial["kib_per_socket"])
                lines.append(
                    f"| {name} | {figures['open_s']:.2f} | {figures['cpu_ms_per_socket']:.2f} "
                    f"| {figures['loop_cpu_ms_per_socket']:.2f} "
                    f"| {figures['kib_per_socket']:.1f} | {vs_open} | {vs_kib} |"
                )
        else:
            lines.append(
                "| target | sockets | all back and synced (s) | median (s) | messages | lost | duplicates | stuck |"
            )
            lines.append("|---|---|---|---|---|---|---|---|")
            for name, f in by_target.items():
                lines.append(
                    f"| {name} | {f['sockets']} | {f['all_back_s']:.2f} | {f['p50_back_s']:.2f} | {f['messages']} "
                    f"| {f['lost']} | {f['duplicates']} | {f['stuck']} |"
                )
        lines.append("")
    return "\n".join(lines)


def svg_plot(scenario: str, by_target: dict) -> str:
    """p99 latency against delivered rate, one line per target, as a small hand-written SVG."""
    width, height, pad = 640, 360, 50
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    points = {
        name: [(s["deliveries_per_s"], s["p99"]) for s in steps if s["p99"] == s["p99"]]
        for name, steps in by_target.items()
    }
    xs = [x for pts in points.values() for x, _ in pts] or [1]
    ys = [y for pts in points.values() for _, y in pts] or [1]
    xmax, ymax = max(xs) * 1.1, max(min(max(ys), 1000), 1) * 1.1

    def sx(x):
        return pad + (width - 2 * pad) * x / xmax

    def sy(y):
        return height - pad - (height - 2 * pad) * min(y, ymax) / ymax

    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
    parts = [svg + ' font-family="sans-serif" font-size="11">']
    parts.append(f'<text x="{pad}" y="20" font-size="13">{scenario}: p99 latency (ms) against deliveries/s</text>')
    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>')
    parts.append(f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>')
    for i in range(5):
        x, y = xmax * i / 4, ymax * i / 4
        parts.append(f'<text x="{sx(x):.0f}" y="{height - pad + 15}" text-anchor="middle">{x:.0f}</text>')
        parts.append(f'<text x="{pad - 5}" y="{sy(y):.0f}" text-anchor="end">{y:.0f}</text>')
    for index, (name, pts) in enumerate(points.items()):
        color = colors[index % len(colors)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{width - pad - 150}" y="{pad + 15 * index}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


async def main_async(args) -> dict:
    os.sched_setaffinity(0, {1}) if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity") else None
    workdir = Path(tempfile.mkdtemp(prefix="chatterbox-bench-"))
    size = sizes(args.smoke) | {"scenarios": args.scenarios.split(",")}
    targets = []
    if "embedded" in args.targets:
        targets.append(Chatterbox("chatterbox-embedded", "embedded", workdir, args.server))
    if "pg" in args.targets:
        targets.append(Chatterbox("chatterbox-pg-redis", "pg", workdir, args.server))
    if "tutorial" in args.targets:
        targets.append(Tutorial(workdir, args.server))
    if "bare" in args.targets:
        targets.append(Bare(workdir))
    results: dict = {}
    for target in targets:
        print(f"== {target.name}", flush=True)
        await run_target(target, size, results)
    if "pg" in args.targets and "S5" in size["scenarios"]:
        print("== chatterbox-pg-redis, one process and two", flush=True)
        await run_processes(workdir, args.server, size, results)
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds long (CI)")
    parser.add_argument("--targets", default="embedded,pg,tutorial,bare", help="comma-separated subset")
    parser.add_argument("--scenarios", default="S1,S2,S3,S4,S5", help="comma-separated subset")
    parser.add_argument(
        "--server", default=serve.DEFAULT_SERVER, choices=serve.SERVERS, help="ASGI server for Chatterbox"
    )
    parser.add_argument("--out", default=str(RESULTS), help="directory for RESULTS.md, results.json and plots")
    args = parser.parse_args()
    started = machine()
    started_at = time.monotonic()
    results = asyncio.run(main_async(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = report(results, args.smoke, started) + f"\nThe whole run took {time.monotonic() - started_at:.0f} s.\n"
    (out / "RESULTS.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    for scenario, by_target in results.items():
        if scenario.startswith(("S1", "S2", "S5")):
            name, size = scenario.split(",")[0], scenario.split(",")[1].strip().split()[0]
            slug = (name.replace("1:1", "pairs").replace(" ", "-") + "-" + size).lower()
            (out / f"{slug}.svg").write_text(svg_plot(scenario, by_target))
    print(text)


if __name__ == "__main__":
    main()
