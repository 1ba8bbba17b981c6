"""The `chatterbox` command, run as a real process against a real server, fed through pipes."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from accounts.models import ApiToken
from chat import services
from chat.models import Conversation
from chat.models import Message as StoredMessage
from tests.client.test_library import FAST_KDF, fresh_totp, messages_of
from tests.conftest import PASSWORD

CHATTERBOX = str(Path(sys.executable).with_name("chatterbox"))


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def chatterbox(*args, stdin="", env=None, timeout=60):
    """Run the console script; return the finished process (stdout and stderr as text)."""
    return subprocess.run(
        [CHATTERBOX, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def general(alice, bob):
    channel, _ = services.conversation_create(creator=alice, kind="channel", name="general")
    services.channel_join(user=bob, conversation_id=channel.pk)
    return channel


def test_login_stores_a_token_with_mode_0600_and_never_the_password(live_url, alice, general):
    done = chatterbox("--server", live_url, "login", "alice", stdin=f"{PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert "Logged in to" in done.stdout and "as alice" in done.stdout
    path = Path(os.environ["CHATTERBOX_CONFIG_DIR"]) / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_text()
    assert PASSWORD not in stored
    token = json.loads(stored)["servers"][live_url]["token"]
    assert token.startswith("cbx_") and ApiToken.objects.get(user=alice).name.startswith("chatterbox CLI on ")

    # The stored server and token are used from then on, with no flags at all.
    listing = chatterbox("conversations", "--json")
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line)["target"] for line in listing.stdout.splitlines()] == ["#general"]
    assert chatterbox("whoami").stdout.startswith("alice ")

    wrong = chatterbox("--server", live_url, "login", "alice", stdin="not the password\n")
    assert wrong.returncode == 1 and "password" in wrong.stderr.lower()

    assert chatterbox("logout").returncode == 0
    after = chatterbox("--server", live_url, "conversations")
    assert after.returncode == 2 and "chatterbox login" in after.stderr


def test_login_with_two_factor_code_from_the_pipe(live_url, alice, general):
    secret = generate_totp_secret()
    TOTP.activate(alice, secret)
    done = chatterbox("--server", live_url, "login", "alice@example.com", stdin=f"{PASSWORD}\n{fresh_totp(secret)}\n")
    assert done.returncode == 0, done.stderr
    assert chatterbox("whoami").stdout.startswith("alice ")
    missing = chatterbox("--server", live_url, "login", "alice", stdin=f"{PASSWORD}\n")
    assert missing.returncode == 2 and "Two-factor code" in missing.stderr


def test_send_from_a_pipe_to_a_channel_and_an_encrypted_direct_message(
    live_url, alice, bob, general, token_for, connect_as
):
    bob_chat = connect_as(live_url, bob)
    bob_chat.setup_encryption("bob passphrase words", **FAST_KDF)
    alice_env = {"CHATTERBOX_SERVER": live_url, "CHATTERBOX_TOKEN": token_for(alice)}

    sent = chatterbox("send", "#general", "-", stdin="hi from a pipe\n", env=alice_env)
    assert sent.returncode == 0, sent.stderr
    assert StoredMessage.objects.get(pk=int(sent.stdout)).body == "hi from a pipe"
    assert messages_of(bob_chat, general.pk, 1)[0].text == "hi from a pipe"

    # Alice's key is made by the library (as the browser would); the CLI unlocks it.
    from client import SyncClient
    from client.keys import KeyStore

    with SyncClient(live_url, token=token_for(alice), keystore=KeyStore()) as alice_chat:
        alice_chat.setup_encryption("alice passphrase words", **FAST_KDF)
    locked = chatterbox("send", "@bob", "-", stdin="secret\n", env=alice_env)
    assert locked.returncode == 1 and "CHATTERBOX_PASSPHRASE" in locked.stderr
    wrong = chatterbox("send", "@bob", "x", env={**alice_env, "CHATTERBOX_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1 and "Wrong passphrase" in wrong.stderr
    sent = chatterbox(
        "send",
        "@bob",
        "-",
        stdin="the eagle has landed\n",
        env={**alice_env, "CHATTERBOX_PASSPHRASE": "alice passphrase words"},
    )
    assert sent.returncode == 0, sent.stderr
    stored = StoredMessage.objects.get(pk=int(sent.stdout))
    assert stored.conversation.encrypted and stored.body == "" and "eagle" not in stored.ciphertext
    direct = Conversation.objects.get(kind="direct")
    assert messages_of(bob_chat, direct.pk, 1)[0].text == "the eagle has landed"

    history = chatterbox(
        "history", "@bob", "--json", env={**alice_env, "CHATTERBOX_PASSPHRASE": "alice passphrase words"}
    )
    lines = [json.loads(line) for line in history.stdout.splitlines()]
    assert [line["text"] for line in lines if line["kind"] != "system"] == ["the eagle has landed"]


def test_bad_command_lines_get_clear_errors(live_url, alice, general, token_for):
    env = {"CHATTERBOX_TOKEN": token_for(alice)}
    no_server = chatterbox("send", "#general", "hi", env=env)
    assert no_server.returncode == 2 and "--server" in no_server.stderr
    bad_server = chatterbox("--server", "ftp://example.com", "send", "#general", "hi", env=env)
    assert bad_server.returncode == 2 and "http://" in bad_server.stderr
    env["CHATTERBOX_SERVER"] = live_url
    unknown = chatterbox("send", "#nowhere", "hi", env=env)
    assert unknown.returncode == 1 and "No channel or group called 'nowhere'" in unknown.stderr
    empty = chatterbox("send", "#general", "-", stdin="\n", env=env)
    assert empty.returncode == 2 and "empty" in empty.stderr
    too_long = chatterbox("send", "#general", "x" * 4001, env=env)
    assert too_long.returncode == 1 and "4000" in too_long.stderr
    revoked = chatterbox("conversations", env={**env, "CHATTERBOX_TOKEN": "cbx_revoked"})
    assert revoked.returncode == 3 and "Log in again" in revoked.stderr
    assert chatterbox("upload", "#general", "/no/such/file", env=env).returncode == 2


def test_listen_prints_json_lines_as_messages_arrive(live_url, alice, bob, general, token_for, connect_as):
    env = {**os.environ, "CHATTERBOX_SERVER": live_url, "CHATTERBOX_TOKEN": token_for(alice)}
    listener = subprocess.Popen(
        [CHATTERBOX, "listen", "--json", "--count", "2", "#general"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        bob_chat = connect_as(live_url, bob)
        # Wait until Alice's socket is up (she shows as online), so nothing is sent before it listens.
        wait_until(lambda: alice.pk in bob_chat.online)
        bob_chat.send("#general", "first")
        bob_chat.send("#general", "second")
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["sender"], line["text"], line["conversation"]) for line in lines] == [
        ("bob", "first", general.pk),
        ("bob", "second", general.pk),
    ]


def test_upload_sends_a_file_with_a_caption(live_url, alice, general, token_for, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("from the command line\n")
    env = {"CHATTERBOX_SERVER": live_url, "CHATTERBOX_TOKEN": token_for(alice)}
    done = chatterbox("upload", "#general", str(notes), "--text", "the notes", env=env)
    assert done.returncode == 0, done.stderr
    message = StoredMessage.objects.get(pk=int(done.stdout))
    assert (message.body, message.attachment.name, message.attachment.size) == ("the notes", "notes.txt", 22)
    history = chatterbox("history", "#general", env=env)
    assert history.stdout.rstrip().endswith("Alice Liddell: the notes [file: notes.txt]")


def test_react_block_and_report_from_the_command_line(live_url, alice, bob, general, token_for):
    from moderation.models import Block, Report

    alice_env = {"CHATTERBOX_SERVER": live_url, "CHATTERBOX_TOKEN": token_for(alice)}
    bob_env = {"CHATTERBOX_SERVER": live_url, "CHATTERBOX_TOKEN": token_for(bob)}
    message_id = int(chatterbox("send", "#general", "ship it?", env=alice_env).stdout)
    done = chatterbox("react", "#general", str(message_id), "🚀", env=bob_env)
    assert done.returncode == 0, done.stderr
    assert list(StoredMessage.objects.get(pk=message_id).reactions.values_list("emoji", flat=True)) == ["🚀"]
    refused = chatterbox("react", "#general", str(message_id), "rocket", env=bob_env)
    assert refused.returncode == 1 and "emoji" in refused.stderr.lower()
    assert chatterbox("react", "#general", str(message_id), "🚀", "--off", env=bob_env).returncode == 0
    assert not StoredMessage.objects.get(pk=message_id).reactions.exists()

    done = chatterbox("report", "#general", str(message_id), "--reason", "spam", "--note", "ads", env=bob_env)
    assert done.returncode == 0, done.stderr
    report = Report.objects.get()
    assert done.stdout.strip() == f"Report {report.pk}: open"
    assert (report.message_id, report.reason, report.note) == (message_id, "spam", "ads")
    assert chatterbox("report", "#general", "--reason", "spam", env=bob_env).returncode == 2  # no message, no @user
    assert chatterbox("report", "#general", "1", "--reason", "rude", env=bob_env).returncode == 2  # not a reason

    assert chatterbox("block", "@bob", env=alice_env).returncode == 0
    assert Block.objects.filter(blocker=alice, blocked=bob).exists()
    assert chatterbox("blocks", env=alice_env).stdout.startswith("@bob ")
    assert chatterbox("unblock", "bob", env=alice_env).returncode == 0
    assert chatterbox("blocks", env=alice_env).stdout == ""
