"""The benchmark's smoke run in CI: every Chatterbox scenario at tiny sizes, asserting 0 lost,
0 stuck and 0 duplicates. It never asserts speed: CI machines are too noisy for that."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_smoke_loses_nothing(tmp_path):
    env = dict(os.environ)
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if database_url.startswith("postgres") and redis_url:
        target = "pg"
        parts = urlsplit(database_url)
        env["BENCH_PG_ADMIN_URL"] = urlunsplit(parts._replace(path="/postgres"))
        env["BENCH_PG_DB"] = f"{os.environ.get('TEST_DB_NAME', 'test')}_bench"
        env["BENCH_REDIS_URL"] = redis_url
        env["BENCH_PREFIX"] = f"{os.environ.get('CHANNEL_LAYER_PREFIX', 'chatterbox')}-bench"
    else:
        target = "embedded"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--targets", target, "--out", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=300, capture_output=True)
    results = json.loads((tmp_path / "results.json").read_text())
    expected = {"S1 fan-out, 20 members", "S2 1:1, 10 pairs", "S3 idle, 40 sockets", "S4 storm, 20 sockets"}
    # S5, one server process against two on one port, needs Redis between the processes.
    assert set(results) == expected | ({"S5 processes, 10 pairs"} if target == "pg" else set())
    if target == "pg":
        by_processes = results.pop("S5 processes, 10 pairs")
        assert set(by_processes) == {"chatterbox-pg-redis-1-process", "chatterbox-pg-redis-2-processes"}
        for steps in by_processes.values():
            assert steps and all(step["lost"] == 0 and step["deliveries"] == step["messages"] for step in steps)
    for scenario, by_target in results.items():
        figures = next(iter(by_target.values()))
        if scenario.startswith(("S1", "S2")):
            assert figures, scenario
            for step in figures:
                assert step["lost"] == 0 and step["deliveries"] == step["messages"] * (
                    20 if scenario.startswith("S1") else 1
                ), (scenario, step)
        elif scenario.startswith("S3"):
            assert figures["sockets"] == 40
        else:
            assert (figures["lost"], figures["stuck"], figures["duplicates"]) == (0, 0, 0), figures
            assert figures["messages"] > 0
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Message-path benchmark (smoke)")
