import functools

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import get_script_prefix, reverse


@functools.lru_cache(maxsize=10_000)
def _avatar_path(user_id: int, script_prefix: str) -> str:
    # Every message object names its sender's picture: reversing the URL each time cost more
    # than the rest of the sender's object.
    return reverse("avatar", kwargs={"user_id": user_id})


class User(AbstractUser):
    """A Chatterbox account; the profile lives on the user row itself."""

    display_name = models.CharField(max_length=64, blank=True)
    bio = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=100, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    # Bumped on every new picture so browsers never show a cached old one.
    avatar_version = models.PositiveIntegerField(default=0)
    # When the user's last open socket closed; "last seen" for people who are offline.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Why a moderator banned the account, and when; kept after the ban is lifted, for the record.
    ban_reason = models.CharField(max_length=500, blank=True)
    banned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def name(self) -> str:
        """Return the name to show: the display name, else the username."""
        return self.display_name or self.username

    @property
    def avatar_url(self) -> str:
        return _avatar_path(self.pk, get_script_prefix()) + f"?v={self.avatar_version}"

    @property
    def initials(self) -> str:
        words = self.name.split()
        letters = "".join(word[0] for word in words[:2]) if len(words) > 1 else self.name[:2]
        return letters.upper()


class UserKeyQuerySet(models.QuerySet):
    def of_username(self, username: str) -> "UserKeyQuerySet":
        """Keys of the active user with this username (banned users are not offered)."""
        return self.filter(user__username__iexact=username, user__is_active=True).select_related("user")


class UserKey(models.Model):
    """A user's X25519 public key and the passphrase-sealed backup of its private half.

    The server stores these as the browser sent them (standard base64) and never sees the
    passphrase, so it cannot open the backup.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="encryption_key")
    public_key = models.CharField(max_length=44)
    encrypted_private_key = models.CharField(max_length=64)
    salt = models.CharField(max_length=24)
    nonce = models.CharField(max_length=32)
    kdf = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserKeyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"key of {self.user_id}"


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user).order_by("-created_at")


class ApiToken(models.Model):
    """A bearer token for bots and the Python client; only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"
