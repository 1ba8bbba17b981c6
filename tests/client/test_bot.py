"""The example bot's answers (it is run against a real server in test_browser_interop)."""

import re
from datetime import UTC, datetime

import pytest

from client.bots.dicebot import USAGE, answer, main


def test_time_and_rolls():
    assert (
        answer("/time", now=datetime(2026, 1, 31, 12, 5, 9, tzinfo=UTC))
        == "It is 12:05:09 UTC on Saturday 31 January 2026."
    )
    assert re.fullmatch(r"🎲 d6: [1-6]", answer("/roll"))
    assert re.fullmatch(r"🎲 d20: ([1-9]|1\d|20)", answer("/ROLL 20"))
    three = answer("/roll 3d6")
    rolls, total = re.fullmatch(r"🎲 3d6: (.+) = (\d+)", three).groups()
    assert sum(map(int, rolls.split(" + "))) == int(total) and len(rolls.split(" + ")) == 3


@pytest.mark.parametrize("command", ["/roll 0d6", "/roll 101d6", "/roll d1", "/roll 1d1001", "/roll lots", "/roll -3"])
def test_bad_rolls_get_the_usage(command):
    assert answer(command) == USAGE


@pytest.mark.parametrize("text", ["", "hello", "roll 3d6", "/rolling", "the /time is now"])
def test_other_messages_get_no_answer(text):
    assert answer(text) is None


def test_bot_needs_a_server_and_a_token(monkeypatch, capsys):
    monkeypatch.delenv("CHATTERBOX_SERVER", raising=False)
    monkeypatch.delenv("CHATTERBOX_TOKEN", raising=False)
    assert main([]) == 2
    assert "CHATTERBOX_TOKEN" in capsys.readouterr().err
