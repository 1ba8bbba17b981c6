"""Production settings: DEBUG=0 demands a secret key and hosts, and then passes Django's deploy checks."""

import os
import runpy
import secrets
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SETTINGS_FILE = ROOT / "chatterbox" / "settings.py"
# Variables that would change what is being checked if the developer's shell had them set.
CONFIG_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "ACCOUNT_EMAIL_VERIFICATION",
    "LOGIN_FAILED_RATE_LIMIT",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "DJANGO_SETTINGS_MODULE",
    # tests/conftest.py sets this for Playwright; the deploy check rightly objects to it.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def settings_with(monkeypatch, **variables: str) -> dict:
    """Evaluate settings.py afresh under the given environment and return its names."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_production_without_secret_key_fails_clearly():
    result = manage("check", DEBUG="0", ALLOWED_HOSTS="chat.example.com")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG=0 requires SECRET_KEY to be set." in result.stderr


def test_production_without_allowed_hosts_fails_clearly():
    result = manage("check", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG=0 requires ALLOWED_HOSTS to be set." in result.stderr


def test_production_passes_the_deploy_checks():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="chat.example.com",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_are_hardened(monkeypatch):
    names = settings_with(monkeypatch, DEBUG="0", SECRET_KEY="k" * 50, ALLOWED_HOSTS="chat.example.com, a.example")
    assert names["DEBUG"] is False
    assert names["ALLOWED_HOSTS"] == ["chat.example.com", "a.example"]
    assert names["SESSION_COOKIE_SECURE"] and names["CSRF_COOKIE_SECURE"] and names["SECURE_SSL_REDIRECT"]
    assert names["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert names["MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN"] is False


def test_embedded_defaults(monkeypatch):
    names = settings_with(monkeypatch)
    assert names["DEBUG"] is True
    assert names["ACCOUNT_EMAIL_VERIFICATION"] == "optional"
    assert names["ACCOUNT_RATE_LIMITS"]["login_failed"] == "10/m/ip,5/5m/key"
    assert "localhost" in names["ALLOWED_HOSTS"]


@pytest.mark.parametrize("value", ["mandatory", "none"])
def test_email_verification_follows_the_environment(monkeypatch, value):
    assert settings_with(monkeypatch, ACCOUNT_EMAIL_VERIFICATION=value)["ACCOUNT_EMAIL_VERIFICATION"] == value
