"""Benchmark search of encrypted history in the browser: MiniSearch index of N messages in headless Chromium.

    .venv/bin/python bench/search_browser.py               # 20,000 messages, 3 rounds
    .venv/bin/python bench/search_browser.py --messages 5000 --rounds 5

Serves static/ and the npm libraries on 127.0.0.1 (no Django needed), opens a page with
libsodium loaded, and runs bench/search_index_measure.js: build, seal (gzip + secretbox) and
open times, sealed size, median and worst query time. Prints the median of each over the rounds.
"""

import argparse
import functools
import json
import statistics
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ROUTES = {
    "/static/vendor/minisearch/": ROOT / "node_modules" / "minisearch" / "dist" / "es",
    "/static/vendor/libsodium-sumo/": ROOT / "node_modules" / "libsodium-sumo" / "dist",
    "/static/vendor/libsodium-wrappers-sumo/": ROOT / "node_modules" / "libsodium-wrappers-sumo" / "dist",
    "/static/": ROOT / "static",
}
PAGE = b"""<!doctype html><meta charset="utf-8"><title>bench</title>
<script src="/static/vendor/libsodium-sumo/modules-sumo/libsodium-sumo.js"></script>
<script src="/static/vendor/libsodium-wrappers-sumo/modules-sumo/libsodium-wrappers.js"></script>"""


class Handler(SimpleHTTPRequestHandler):
    def translate_path(self, path):
        path = path.split("?", 1)[0]
        for prefix, folder in ROUTES.items():
            if path.startswith(prefix):
                return str(folder / path[len(prefix) :])
        return str(ROOT / "nonexistent")

    def do_GET(self):
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    measure = (ROOT / "bench" / "search_index_measure.js").read_text()
    rounds = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for _ in range(args.rounds):
                page = browser.new_page()  # a fresh page per round: no warm caches between rounds
                page.goto(url)
                page.wait_for_function("globalThis.sodium !== undefined")
                rounds.append(page.evaluate(measure, args.messages))
                page.close()
            browser.close()
    finally:
        server.shutdown()
    summary = {key: round(statistics.median(r[key] for r in rounds), 1) for key in rounds[0]}
    print(json.dumps({"messages": args.messages, "rounds": args.rounds, "median": summary, "all": rounds}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
