"""Moderation tests reuse the chat fixtures: a third user, conversations and sockets."""

from tests.chat.conftest import _fast_password_hashing, carol, connect, no_rate_limit, server_factory  # noqa: F401
