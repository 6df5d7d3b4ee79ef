"""Settings for valuecell-streaming, read once from the environment.

Local defaults need nothing set: SQLite, the in-memory channel layer, DEBUG on,
anonymous use allowed. A deployment sets DATABASE_URL, REDIS_URL, SECRET_KEY,
DEBUG=false and ALLOWED_HOSTS (see docs/deploy.md).
"""

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_networks(name: str, default: list[str]) -> list[str]:
    """Addresses or networks (`127.0.0.1`, `10.0.0.0/8`, `::1`), checked here so a typo stops the start."""
    entries = env_list(name, default)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {entry!r} is not an address or a network") from None
    return entries


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A CSRF failure under the API prefixes is JSON (`csrf_failed`); pages keep Django's.
CSRF_FAILURE_VIEW = "valuecell_site.api_boundary.csrf_failure"
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    # The proxy terminates TLS and says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Plain HTTP through the proxy is redirected to HTTPS; the health check (the
# load balancer's, straight to a worker) is not.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# HSTS: browsers remember it for this long (start small; a year once sure).
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# valuecell_site/middleware.py subclasses Django's security, CSRF and
# clickjacking middleware, which Django's deploy checks look for by dotted path:
# these three "missing middleware" warnings are false alarms.
# valuecell_site/checks.py runs the checks they used to hide (HSTS, the SSL
# redirect, the CSRF cookie, X-Frame-Options) through the subclasses.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "streaming",
    "conversations",
    "valuecell_site.apps.SiteConfig",  # its system checks (valuecell_site/checks.py)
]

# Django's standard middleware, in subclasses that skip the thread hops of
# async mode where a hook does no I/O (valuecell_site/middleware.py).
MIDDLEWARE = [
    "valuecell_site.middleware.ReleaseConnectionsForStreamsMiddleware",
    "valuecell_site.middleware.SecurityMiddleware",
    "valuecell_site.static_middleware.AsyncStaticFilesMiddleware",
    # Before the session exists: a forged cross-site request must not plant one.
    "valuecell_site.api_boundary.CrossSiteRequestMiddleware",
    "valuecell_site.api_boundary.ApiErrorsMiddleware",
    "valuecell_site.csp.ContentSecurityPolicyMiddleware",
    "valuecell_site.middleware.SessionMiddleware",
    "valuecell_site.middleware.CommonMiddleware",
    "valuecell_site.middleware.CsrfViewMiddleware",
    "valuecell_site.middleware.AuthenticationMiddleware",
    "valuecell_site.middleware.MessageMiddleware",
    "valuecell_site.middleware.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "valuecell_site.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "valuecell_site.asgi.application"

# --- Database ---------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets followers read while the event writer writes; IMMEDIATE avoids
    # lock-upgrade deadlocks between concurrent writers.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A pool: under ASGI every request runs its ORM calls on a thread of its own,
    # and a new PostgreSQL connection per request would cost more than the request.
    if env_bool("DB_POOL", True):
        # Django's backend, whose pool checks a connection before lending it (a
        # database restart leaves every idle one dead).
        DATABASES["default"]["ENGINE"] = "conversations.postgresql"
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DB_POOL_MIN_SIZE", 2),
            "max_size": env_int("DB_POOL_MAX_SIZE", 20),
            "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
            # psycopg_pool retries a lost connection with a doubling back-off
            # (1, 2, 4 … s, for up to 5 min by default): after a 40 s outage the
            # pool could wait another 20 s before trying again. Given up sooner,
            # the next request that finds the pool empty reconnects at once.
            "reconnect_timeout": env_float("DB_POOL_RECONNECT_TIMEOUT", 5.0),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ----------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Redis pub/sub by default: one PUBLISH per group message and messages pushed
    # to each worker, where channels_redis' core layer makes every receive a few
    # round trips through one loop per worker (at 20 streams on two workers it
    # added about 300 ms). Pub/sub keeps nothing for a disconnected receiver:
    # followers then re-read the store, runs re-read a stored answer.
    REDIS_CHANNEL_LAYER = os.environ.get("REDIS_CHANNEL_LAYER", "pubsub")
    REDIS_PREFIX = os.environ.get("REDIS_PREFIX", "valuecell")
    if REDIS_CHANNEL_LAYER == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_PREFIX},
            }
        }
    elif REDIS_CHANNEL_LAYER == "core":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_PREFIX, "capacity": 1000, "expiry": 60},
            }
        }
    else:
        raise ImproperlyConfigured(f"REDIS_CHANNEL_LAYER must be 'pubsub' or 'core', not {REDIS_CHANNEL_LAYER!r}")
else:
    # Channels' in-memory layer, minus its O(open channels) sweep on every send.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "streaming.eventlog.local_layer.LocalChannelLayer", "CONFIG": {"capacity": 1000}}
    }

# --- Cache: admission control's shared counts (streaming/runtime/admission.py) --
# Redis when the workers share one, so limits hold across them; else this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# `text` (readable) or `json` (one object per line); every line logged during a
# run carries its conversation_id, and each finished run writes one line.
VALUECELL_LOG_FORMAT = os.environ.get("VALUECELL_LOG_FORMAT", "text").strip().lower() or "text"
if VALUECELL_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"VALUECELL_LOG_FORMAT must be 'text' or 'json', not {VALUECELL_LOG_FORMAT!r}")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "conversation": {"()": "streaming.logs.ConversationFilter"},
        # A Redis outage is logged once when it starts and once when it ends
        # (streaming/eventlog/layer_outage.py), channels_redis' tracebacks included.
        "layer_outage": {"()": "streaming.eventlog.layer_outage.OutageLogFilter"},
        "layer_tasks": {"()": "streaming.eventlog.layer_outage.LayerTaskErrorFilter"},
    },
    "formatters": {
        "text": {"()": "streaming.logs.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "streaming.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["conversation"], "formatter": VALUECELL_LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own loggers through the same handler (its defaults would print plain text beside the JSON).
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "channels_redis.pubsub": {"filters": ["layer_outage"]},
        "channels_redis.core": {"filters": ["layer_outage"]},
        "asyncio": {"filters": ["layer_tasks"]},
    },
}

# --- valuecell-streaming ----------------------------------------------------
# Agents by name -> dotted path of a class with `name`, `description` and `stream()`.
VALUECELL_AGENTS = {
    "demo": "streaming.agents.demo.DemoAgent",
}
VALUECELL_BENCH_AGENT = env_bool("VALUECELL_BENCH_AGENT", True)
if VALUECELL_BENCH_AGENT:
    VALUECELL_AGENTS["bench"] = "streaming.agents.bench.BenchAgent"
VALUECELL_DEFAULT_AGENT = "demo"
# Where the event log stores events: a class implementing streaming.stored.EventStore.
VALUECELL_EVENT_STORE = "conversations.store.DjangoEventStore"

VALUECELL_ALLOW_ANONYMOUS = env_bool("VALUECELL_ALLOW_ANONYMOUS", True)
# Proxy authentication: a trusted proxy names the signed-in user in this request
# header (e.g. X-Forwarded-User, which it must strip from clients' requests). Empty: off.
VALUECELL_REMOTE_USER_HEADER = os.environ.get("VALUECELL_REMOTE_USER_HEADER", "").strip()
if VALUECELL_REMOTE_USER_HEADER:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("valuecell_site.middleware.AuthenticationMiddleware") + 1,
        "valuecell_site.middleware.ProxyUserMiddleware",
    )
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.RemoteUserBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
# A production build of ValueCell's web frontend to serve at /home, /agent/…, /assets/…
# (its API is /api/v1/, docs/dialects.md); empty: not served.
VALUECELL_WEB_CLIENT_DIR = os.environ.get("VALUECELL_WEB_CLIENT_DIR", "").strip()
# An HTTP request's bearer token is looked up at most this often per worker
# (conversations/token_cache.py): a revoked token is refused at once by the
# worker that revoked it, by every other one within this many seconds. 0: always look.
VALUECELL_TOKEN_CACHE_SECONDS = env_float("VALUECELL_TOKEN_CACHE_SECONDS", 5.0)
VALUECELL_MAX_QUERY_BYTES = env_int("VALUECELL_MAX_QUERY_BYTES", 32 * 1024)
VALUECELL_SSE_HEARTBEAT_SECONDS = env_float("VALUECELL_SSE_HEARTBEAT_SECONDS", 15.0)
VALUECELL_SSE_RETRY_MS = env_int("VALUECELL_SSE_RETRY_MS", 3000)
# An SSE stream opened with an API token re-checks it this often, and ends
# once it is revoked or its user deactivated (the reconnect then gets a 401).
VALUECELL_SSE_REAUTH_SECONDS = env_float("VALUECELL_SSE_REAUTH_SECONDS", 30.0)
VALUECELL_INPUT_TIMEOUT_SECONDS = env_float("VALUECELL_INPUT_TIMEOUT_SECONDS", 3600.0)
# How long an `Idempotency-Key` of POST /agents/stream is remembered (a repeat streams the first run).
VALUECELL_IDEMPOTENCY_TTL_SECONDS = env_float("VALUECELL_IDEMPOTENCY_TTL_SECONDS", 24 * 3600.0)
# A run waiting for an answer also looks for it in the database this often,
# doubling up to VALUECELL_FOLLOW_MAX_RECHECK_SECONDS (the message announcing
# it may be lost with a Redis connection).
VALUECELL_ANSWER_RECHECK_SECONDS = env_float("VALUECELL_ANSWER_RECHECK_SECONDS", 2.0)
VALUECELL_DEMO_CHUNK_DELAY_MS = env_int("VALUECELL_DEMO_CHUNK_DELAY_MS", 15)
# The event writer flushes whatever accumulated while the previous write ran;
# a producer waits when this many events are pending (backpressure). It bounds
# the delay under overload: with 200 streams offering 4x what the machine can
# store, 5000 meant ~0.8 s p99 and 1000 ~0.4 s, for ~25% fewer events/s.
VALUECELL_WRITER_MAX_PENDING = env_int("VALUECELL_WRITER_MAX_PENDING", 1000)
VALUECELL_PUBLISH_BATCH = env_int("VALUECELL_PUBLISH_BATCH", 500)
# A follower with nothing live for this long re-reads the store (lost messages).
VALUECELL_FOLLOW_RECHECK_SECONDS = env_float("VALUECELL_FOLLOW_RECHECK_SECONDS", 2.0)
# A subscription (WebSocket) to a quiet conversation doubles that pause up to this.
VALUECELL_FOLLOW_MAX_RECHECK_SECONDS = env_float("VALUECELL_FOLLOW_MAX_RECHECK_SECONDS", 30.0)
# A run holds a lease on its conversation, renewed while it runs; a worker that
# dies stops renewing, and after this long any worker ends the run as failed.
VALUECELL_RUN_LEASE_SECONDS = env_float("VALUECELL_RUN_LEASE_SECONDS", 30.0)
VALUECELL_REAPER_INTERVAL_SECONDS = env_float("VALUECELL_REAPER_INTERVAL_SECONDS", 10.0)
# On SIGTERM, runs get this long to finish before they are ended as failed.
VALUECELL_SHUTDOWN_GRACE_SECONDS = env_float("VALUECELL_SHUTDOWN_GRACE_SECONDS", 10.0)

# --- Admission control (docs/deploy.md) --------------------------------------
# Per principal (a token's or signed-in user, or an anonymous session), on all
# workers together: runs in progress at once (0: no limit), and new runs per
# window, like `60/min` or `10/30s` (`off`: no limit; anonymous sessions are
# also counted per client address). A chat page's user never meets either.
VALUECELL_MAX_RUNS_PER_PRINCIPAL = env_int("VALUECELL_MAX_RUNS_PER_PRINCIPAL", 10)
VALUECELL_RUN_RATE = os.environ.get("VALUECELL_RUN_RATE", "60/min")
# New runs get 503 while this worker's event writer has had more than this many
# events waiting for over a second (0: never); the default is the writer's own
# backpressure point: its producers are being held back.
VALUECELL_OVERLOAD_BACKLOG = env_int("VALUECELL_OVERLOAD_BACKLOG", VALUECELL_WRITER_MAX_PENDING)
# Proxies whose X-Forwarded-For names the client (addresses or networks; none by
# default: the peer is the client). Per-address limits and /metrics use it.
VALUECELL_TRUSTED_PROXIES = env_networks("VALUECELL_TRUSTED_PROXIES", [])
# Who may read GET /metrics (addresses or networks); others get 403.
VALUECELL_METRICS_ALLOW = env_networks("VALUECELL_METRICS_ALLOW", ["127.0.0.1", "::1"])

# --- The `llm` agent: a model behind any OpenAI-compatible endpoint (docs/llm.md) ---
# Offered only when LLM_BASE_URL and LLM_MODEL are set; LLM_API_KEY may stay empty for local servers.
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "").strip()
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "").strip()
LLM_SYSTEM_PROMPT = os.environ.get("LLM_SYSTEM_PROMPT", "")  # empty: the agent's own prompt
LLM_TEMPERATURE = env_float("LLM_TEMPERATURE", 0.0) if os.environ.get("LLM_TEMPERATURE") else None
LLM_CONNECT_TIMEOUT_SECONDS = env_float("LLM_CONNECT_TIMEOUT_SECONDS", 10.0)
LLM_READ_TIMEOUT_SECONDS = env_float("LLM_READ_TIMEOUT_SECONDS", 60.0)  # longest silence from the endpoint
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2)  # after a 429, a 5xx or a connection failure
LLM_RETRY_BACKOFF_SECONDS = env_float("LLM_RETRY_BACKOFF_SECONDS", 1.0)  # doubled at each retry
LLM_RETRY_MAX_DELAY_SECONDS = env_float("LLM_RETRY_MAX_DELAY_SECONDS", 20.0)
LLM_MAX_TOOL_ROUNDS = env_int("LLM_MAX_TOOL_ROUNDS", 5)
LLM_MEMORY_MAX_CHARS = env_int("LLM_MEMORY_MAX_CHARS", 12000)  # earlier turns sent, newest first
LLM_MEMORY_MAX_MESSAGES = env_int("LLM_MEMORY_MAX_MESSAGES", 20)
if LLM_BASE_URL and LLM_MODEL:
    VALUECELL_AGENTS["llm"] = "streaming.agents.llm.agent.LlmAgent"

# --- WebSocket transport (ws/agents/, see docs/protocol.md) ------------------
# The server pings a socket it has not heard from for this long, and after every
# half send window; a ping unanswered for VALUECELL_WS_PONG_TIMEOUT_SECONDS closes it (4001).
VALUECELL_WS_PING_INTERVAL_SECONDS = env_float("VALUECELL_WS_PING_INTERVAL_SECONDS", 20.0)
VALUECELL_WS_PONG_TIMEOUT_SECONDS = env_float("VALUECELL_WS_PONG_TIMEOUT_SECONDS", 20.0)
# Bytes sent but not yet acknowledged by a pong; beyond, frames wait in the outbox.
VALUECELL_WS_SEND_WINDOW_BYTES = env_int("VALUECELL_WS_SEND_WINDOW_BYTES", 1024 * 1024)
# Frames waiting for one socket; an event that finds no room within
# VALUECELL_WS_SEND_TIMEOUT_SECONDS (or a reply that finds none) closes it (4008).
VALUECELL_WS_OUTBOX_FRAMES = env_int("VALUECELL_WS_OUTBOX_FRAMES", 1000)
VALUECELL_WS_SEND_TIMEOUT_SECONDS = env_float("VALUECELL_WS_SEND_TIMEOUT_SECONDS", 10.0)
# A client frame larger than this gets an error frame (Daphne itself closes at 1 MiB).
VALUECELL_WS_MAX_FRAME_BYTES = env_int("VALUECELL_WS_MAX_FRAME_BYTES", 64 * 1024)
# Conversations one socket may receive at once (subscriptions and queries in progress).
VALUECELL_WS_MAX_SUBSCRIPTIONS = env_int("VALUECELL_WS_MAX_SUBSCRIPTIONS", 32)
# A socket opened with an API token checks it this often, and closes (4003)
# once it is revoked or its user deactivated.
VALUECELL_WS_REAUTH_SECONDS = env_float("VALUECELL_WS_REAUTH_SECONDS", 30.0)
