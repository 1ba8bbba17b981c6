import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Login passwords are not under test here; the default hasher costs ~0.25 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
