"""The floor: a bare `websockets` server that relays each frame to every socket of its room.

    python bench/bare_server.py PORT

A client connects to /ROOM and sends text frames; each one reaches every socket in that room
(the sender included), encoded once. No persistence, no authentication, no checks.
"""

import asyncio
import sys
from collections import defaultdict

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = defaultdict(set)


async def handler(websocket):
    room = rooms[websocket.request.path.strip("/") or "lobby"]
    room.add(websocket)
    try:
        async for frame in websocket:
            broadcast(room, frame)
    finally:
        room.discard(websocket)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
