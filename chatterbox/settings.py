"""Chatterbox settings: environment variables over embedded localhost defaults.

With no variables set, the site runs on 127.0.0.1 with SQLite, the in-memory channel
layer, a local-memory cache and console email. DATABASE_URL and REDIS_URL switch to
PostgreSQL and Redis; DEBUG=0 turns on production hardening and requires SECRET_KEY
and ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DEBUG", True)

if DEBUG:
    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-never-use-in-production"
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
else:
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not SECRET_KEY:
        raise ImproperlyConfigured("DEBUG=0 requires SECRET_KEY to be set.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DEBUG=0 requires ALLOWED_HOSTS to be set.")

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "chatterbox.admin.ChatterboxAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Lists each user's sessions, so that "sign out everywhere" can end them.
    "allauth.usersessions",
    "accounts",
    "chat",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost but one: every error under /api/ leaves as JSON, whichever layer made it.
    "chatterbox.api.ApiErrorMiddleware",
    "chatterbox.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatterbox.auth.TokenAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "chatterbox.urls"
ASGI_APPLICATION = "chatterbox.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chatterbox.context_processors.site",
            ],
        },
    },
]

# Database: SQLite in WAL mode by default, anything dj-database-url knows by DATABASE_URL.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", True):
        # Under ASGI each sync_to_async call may land on another thread; a pool, not persistent
        # per-thread connections, saves the connection setup on every frame.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": env_int("DB_POOL_MAX", 20)}
        # Parameters bound by the server, so that psycopg prepares a statement run often (after 5 runs
        # on a connection): the hot reads' plans are made once per connection, not on every run.
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
    if os.environ.get("TEST_DB_NAME"):
        # Lets several test runs share one PostgreSQL server without colliding.
        DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DB_NAME"]}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Opening the file and setting its pragmas cost more than most queries: keep it open.
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 600),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers work while a writer commits; IMMEDIATE avoids
            # "database is locked" upgrades from read to write transactions.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # A file, not memory, so that a server process started by the tests shares it.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_PATH", str(BASE_DIR / "test-db.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Channel layer and cache: in-process by default, Redis by REDIS_URL.
# Events a socket's channel may hold; a process's fan-out hub channel (chat.fanout) carries every
# conversation's events for all its sockets, so it holds ten times as many.
CHANNEL_LAYER_CAPACITY = env_int("CHANNEL_LAYER_CAPACITY", 1000)
CHANNEL_LAYER_HUB_CAPACITY = {"hub.*": 10 * CHANNEL_LAYER_CAPACITY}
# Seconds a process stays subscribed to a group without renewing (chat.fanout renews every two
# minutes): a process killed without unsubscribing leaves its channel in its groups that long.
CHANNEL_LAYER_GROUP_EXPIRY = env_int("CHANNEL_LAYER_GROUP_EXPIRY", 600)
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatterbox.layers.PooledRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "chatterbox"),
                "capacity": CHANNEL_LAYER_CAPACITY,
                "channel_capacity": CHANNEL_LAYER_HUB_CAPACITY,
                "expiry": 60,
                "group_expiry": CHANNEL_LAYER_GROUP_EXPIRY,
                # Connections per process and event loop; calls wait this long for a free one.
                "max_connections": env_int("REDIS_MAX_CONNECTIONS", 200),
                "pool_timeout": env_int("REDIS_POOL_TIMEOUT", 10),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "chatterbox.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "chatterbox"),
            # Database threads share this pool; a busy one waits rather than failing.
            "OPTIONS": {
                "pool_class": "redis.BlockingConnectionPool",
                "max_connections": env_int("REDIS_MAX_CONNECTIONS", 200),
                "timeout": env_int("REDIS_POOL_TIMEOUT", 10),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chatterbox.layers.LocalChannelLayer",
            "CONFIG": {
                "capacity": CHANNEL_LAYER_CAPACITY,
                "channel_capacity": CHANNEL_LAYER_HUB_CAPACITY,
                "expiry": 60,
            },
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files: our own plus the browser libraries npm installed, all served by WhiteNoise.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/libsodium-wrappers-sumo", BASE_DIR / "node_modules" / "libsodium-wrappers-sumo" / "dist"),
    ("vendor/libsodium-sumo", BASE_DIR / "node_modules" / "libsodium-sumo" / "dist"),
    # MiniSearch's ES module (no imports of its own): static/chat/js/search-index.js imports it.
    ("vendor/minisearch", BASE_DIR / "node_modules" / "minisearch" / "dist" / "es"),
]
# Uploads (profile pictures, attachments) go through Django's storage API: the local MEDIA_ROOT
# by default, or an S3-compatible bucket with MEDIA_STORAGE=s3 (django-storages). Nothing in the
# app assumes a local path.
MEDIA_STORAGE = os.environ.get("MEDIA_STORAGE", "local").strip().lower() or "local"
if MEDIA_STORAGE == "local":
    DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif MEDIA_STORAGE == "s3":
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ.get("AWS_STORAGE_BUCKET_NAME", ""),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
            # Private objects, reachable only through the app or a short-lived signed URL.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env_int("ATTACHMENT_SIGNED_URL_SECONDS", 0) or 300,
            "file_overwrite": False,
        },
    }
    if not DEFAULT_STORAGE["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 requires AWS_STORAGE_BUCKET_NAME.")
else:
    raise ImproperlyConfigured('MEDIA_STORAGE must be "local" (the default) or "s3".')
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_MIMETYPES = {".mjs": "text/javascript"}

MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(BASE_DIR / "media")))

# Uploads: Django's own limit on a request body that is not a file.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", 5 * 1024 * 1024)
AVATAR_MAX_PIXELS = env_int("AVATAR_MAX_PIXELS", 40_000_000)
AVATAR_SIZE = 256

# Attachments (docs/protocol.md "Attachments").
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024)
# What one user's uploads may add up to; 0 turns the quota off.
ATTACHMENT_QUOTA_BYTES = env_int("ATTACHMENT_QUOTA_BYTES", 1024 * 1024 * 1024)
ATTACHMENT_MAX_PIXELS = env_int("ATTACHMENT_MAX_PIXELS", 40_000_000)
ATTACHMENT_THUMBNAIL_SIZE = 480
# Longest voice note or video message, in seconds (the duration the client reports is checked against it).
ATTACHMENT_MAX_SECONDS = env_int("ATTACHMENT_MAX_SECONDS", 600)
# Uploads not sent in a message within this many seconds are deleted by `manage.py attachments_cleanup`.
ATTACHMENT_ORPHAN_SECONDS = env_int("ATTACHMENT_ORPHAN_SECONDS", 24 * 3600)
# Seconds a signed bucket URL stays valid; above 0 (and MEDIA_STORAGE=s3) members are redirected
# to the bucket instead of the app streaming the bytes.
ATTACHMENT_SIGNED_URL_SECONDS = env_int("ATTACHMENT_SIGNED_URL_SECONDS", 0)
# The bucket's origin (e.g. https://bucket.s3.example.com), allowed by the page's CSP when redirecting.
MEDIA_ORIGIN = os.environ.get("MEDIA_ORIGIN", "").strip()

# Email: the console by default; SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Chatterbox <noreply@localhost>")

# Accounts (django-allauth).
SITE_NAME = os.environ.get("SITE_NAME", "Chatterbox")
# Where people who are stuck (e.g. no password reset email) can write; pages offer it when set.
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "")
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_FORMS = {"login": "accounts.forms.LoginForm"}
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# The database store that closes a session's sockets when the session ends (accounts.session_store).
SESSION_ENGINE = "accounts.session_store"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": os.environ.get("LOGIN_FAILED_RATE_LIMIT", "10/m/ip,5/5m/key"),
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_FORMS = {"authenticate": "accounts.forms.AuthenticateForm"}
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_PASSKEY_SIGNUP_ENABLED = False
# WebAuthn demands https except on localhost; the dev server is plain http.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
MFA_TOTP_ISSUER = SITE_NAME

# Security headers; production hardening follows DEBUG=0.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    # libsodium compiles WebAssembly from bytes it carries inside its JavaScript.
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "media-src": ["'self'", "blob:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if MEDIA_ORIGIN:
    for directive in ("img-src", "media-src", "connect-src"):
        CONTENT_SECURITY_POLICY[directive].append(MEDIA_ORIGIN)
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP inside the platform.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Chat: limits on what one user may send.
# "N/S" = at most N messages per S seconds per user; "off" (or empty) disables the limit.
CHAT_RATE_LIMIT = os.environ.get("CHAT_RATE_LIMIT", "20/10")
CHAT_MESSAGE_MAX_CHARS = env_int("CHAT_MESSAGE_MAX_CHARS", 4000)
# Decoded bytes of one encrypted message body (the JSON content, text and attachment metadata).
CHAT_CIPHERTEXT_MAX_BYTES = env_int("CHAT_CIPHERTEXT_MAX_BYTES", 64 * 1024)
CHAT_GROUP_MAX_MEMBERS = env_int("CHAT_GROUP_MAX_MEMBERS", 256)
# Larger WebSocket frames are answered with `too_large`; keep the server's own limit
# (WEBSOCKET_MAX_BYTES in chatterbox/serve.py) above this so the client gets that answer, not a dropped socket.
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 256 * 1024)
# Seconds a user stays online after their last socket closes: one back within them (a reload, a
# reconnect) is never announced offline and online again.
PRESENCE_OFFLINE_GRACE = float(os.environ.get("PRESENCE_OFFLINE_GRACE", "5"))
# Threads for the reads that opening and syncing a socket cost (chat.consumers.read_async). On
# PostgreSQL several run at once, a pooled connection each, so that a reconnect storm's round trips
# overlap; SQLite gains nothing from more than one.
SOCKET_READ_THREADS = env_int(
    "SOCKET_READ_THREADS", 4 if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" else 1
)

# Link previews in plaintext conversations (chat/previews.py): the server fetches the page with
# these caps, and only from public addresses.
LINK_PREVIEWS = env_bool("LINK_PREVIEWS", True)
LINK_PREVIEW_MAX_BYTES = env_int("LINK_PREVIEW_MAX_BYTES", 256 * 1024)
LINK_PREVIEW_TIMEOUT = env_int("LINK_PREVIEW_TIMEOUT", 5)
LINK_PREVIEW_MAX_REDIRECTS = env_int("LINK_PREVIEW_MAX_REDIRECTS", 3)
# Networks the fetcher may reach although they are not public: for tests on this machine only
# (e.g. "127.0.0.1/32"), so it needs DEBUG. Production never fetches from private addresses.
LINK_PREVIEW_TEST_NETWORKS = env_list("LINK_PREVIEW_TEST_NETWORKS", [])
if LINK_PREVIEW_TEST_NETWORKS and not DEBUG:
    raise ImproperlyConfigured("LINK_PREVIEW_TEST_NETWORKS is for tests only and needs DEBUG=1.")
# Anti-abuse limits (moderation/limits.py), each "N/S" (N per S seconds) or "off": per user, and
# RATE_LIMIT_ADDRESS_FACTOR times that per client address. Accounts younger than
# NEW_ACCOUNT_AGE_HOURS get the stricter *_NEW limit.
ABUSE_LIMITS = {
    kind: (os.environ.get(f"RATE_LIMIT_{kind.upper()}", default), os.environ.get(f"RATE_LIMIT_{kind.upper()}_NEW", new))
    for kind, default, new in [
        ("conversations", "30/3600", "5/3600"),
        ("invitations", "100/3600", "20/3600"),
        ("reports", "20/3600", "5/3600"),
        ("uploads", "100/3600", "20/3600"),
    ]
}
NEW_ACCOUNT_AGE_HOURS = env_int("NEW_ACCOUNT_AGE_HOURS", 24)
RATE_LIMIT_ADDRESS_FACTOR = env_int("RATE_LIMIT_ADDRESS_FACTOR", 5)
# Proxies in front of the app that append to X-Forwarded-For (a PaaS router: 1). 0 trusts no
# header and takes the socket's peer address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

CSRF_FAILURE_VIEW = "chatterbox.views.csrf_failure"

# End-to-end encryption: the Argon2id limits the browser uses to seal a new key backup with
# the user's passphrase. "moderate" (about a second in a browser) is the default and the only
# production choice; "interactive" (a quarter of that) exists for browser tests and needs DEBUG.
E2E_KDF_LIMITS = os.environ.get("E2E_KDF_LIMITS", "").strip().lower() or "moderate"
if E2E_KDF_LIMITS not in {"moderate", "interactive"}:
    raise ImproperlyConfigured('E2E_KDF_LIMITS must be "moderate" (the default) or, in tests, "interactive".')
if E2E_KDF_LIMITS == "interactive" and not DEBUG:
    raise ImproperlyConfigured('E2E_KDF_LIMITS="interactive" is for tests only; it is refused with DEBUG=0.')
