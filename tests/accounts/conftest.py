import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # These tests make and check many passwords in-process; the real PBKDF2 work factor
    # would dominate their run time. (Browser tests keep the real hasher: their server
    # process reads the real settings.)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
