"""Daphne, made to close its WebSockets with 1012 (service restart) when it is told to stop.

Daphne on its own cancels every application and drops the sockets without a close frame, so a
client sees 1006 and cannot tell a restart from a network fault. Here the stop first stops
listening, sends each open socket a 1012 close, and gives the consumers up to GRACEFUL_SECONDS to
run their disconnect handlers, as Uvicorn does; only then does Daphne cancel what is left.
Imported only to run Daphne: importing Daphne installs Twisted's reactor.
"""

import asyncio

from daphne import cli, server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer

from chatterbox.serve import GRACEFUL_SECONDS

SERVICE_RESTART = 1012


class Server(server.Server):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The listening ports: Daphne's own list holds only the Deferreds that made them.
        self.ports = []

    def listen_success(self, port):
        self.ports.append(port)
        return super().listen_success(port)

    def kill_all_applications(self):
        """Stop listening, close open sockets with 1012, wait for their applications, cancel the rest."""
        for port in self.ports:
            port.stopListening()
        for protocol in list(self.connections):
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
                # autobahn's sendClose refuses codes under 3000 but 1000; Daphne sends its 1011 this way too.
                protocol.sendCloseFrame(code=SERVICE_RESTART)
        running = [
            details["application_instance"]
            for details in self.connections.values()
            if details.get("application_instance") and not details["application_instance"].done()
        ]
        cancel_the_rest = super().kill_all_applications
        if not running:
            return cancel_the_rest()
        finished = asyncio.ensure_future(asyncio.wait(running, timeout=GRACEFUL_SECONDS))
        return defer.Deferred.fromFuture(finished).addBoth(lambda _: cancel_the_rest())


class CommandLineInterface(cli.CommandLineInterface):
    server_class = Server
