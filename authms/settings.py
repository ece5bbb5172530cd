"""Settings, all read from the environment (see README "Configuration").

Defaults give the embedded run: SQLite, eager Celery, console providers. Production
must set DEBUG=false with a real SECRET_KEY, DATABASE_URL and CELERY_BROKER_URL.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from authms.env import env_bool, env_int, env_list, env_prefixed, env_seconds, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false.")
    SECRET_KEY = "insecure-embedded-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "authms.admin_site.AuthmsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "authms",
    "templates.apps.MessageTemplatesConfig",
    "communication",
    "notifications",
]

MIDDLEWARE = [
    "authms.middleware.RequestIdMiddleware",
    "authms.middleware.RejectNulBytesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "authms.urls"
WSGI_APPLICATION = "authms.wsgi.application"
ASGI_APPLICATION = "authms.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # First, so that admin/base_site.html here overrides django.contrib.admin's (the admin
        # app comes before authms in INSTALLED_APPS).
        "DIRS": [BASE_DIR / "authms" / "templates"],
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that costs no round trip (authms/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "authms.postgresql"
    # A server that cannot be reached fails the connection in seconds, and one that vanished
    # from an idle connection is noticed within a minute (libpq's TCP keepalives). Options in
    # DATABASE_URL's query string win.
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        **DATABASES["default"].get("OPTIONS", {}),
    }
# PostgreSQL: the log lists' and the request user's reads are prepared once per session and
# planned once (authms.compiled_queries.run_together). Off behind a pooler that hands a client
# connection other server sessions (PgBouncer in transaction or statement mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "authms.User"

REDIS_URL = env_str("REDIS_URL")
# Short socket timeouts: a hung Redis must cost a request a second, not hang it (the
# rate limits fall back to process memory, see authms/throttling.py).
CACHE_TIMEOUT_SECONDS = float(env_str("CACHE_TIMEOUT_SECONDS", "1"))
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
                "socket_timeout": CACHE_TIMEOUT_SECONDS,
            },
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# The inbox's live stream (notifications/api/stream.py): changes are announced on Redis when
# REDIS_URL is set (else each stream reads the database each second: the embedded run).
NOTIFICATION_STREAM_HEARTBEAT = env_seconds("NOTIFICATION_STREAM_HEARTBEAT", "15s")
NOTIFICATION_STREAM_TOKEN_TTL = env_seconds("NOTIFICATION_STREAM_TOKEN_TTL", "60s")
NOTIFICATION_STREAM_MAX_AGE = env_seconds("NOTIFICATION_STREAM_MAX_AGE", "10m")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The default language; each request may ask for another with Accept-Language.
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
FORMAT_MODULE_PATH = ["authms.formats"]  # date and time with seconds and the zone (authms/formats)
LOCALE_PATHS = [BASE_DIR / "authms" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps so a fresh checkout works without collectstatic.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

API_PREFIX = env_str("API_PREFIX", "api/v1/").strip("/") + "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["authms.api.authentication.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["authms.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "authms.api.pagination.PagePagination",
    "EXCEPTION_HANDLER": "authms.api.exceptions.envelope_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",  # authms.api.envelope.RFC3339
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of the service whose X-Forwarded-For entries are trusted for client
    # addresses (rate limits). 0: use the connection's address; never trust it blindly.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0),
}

# Login attempts (POST /auth/token and the admin login), checked before the password is:
# per client address, per username (a successful login clears it), and service-wide so
# password hashing cannot starve other requests. Syntax: N/period (60/min, 10/15m, 5/s).
LOGIN_THROTTLE_IP_RATE = env_str("LOGIN_THROTTLE_IP_RATE", "30/min")
LOGIN_THROTTLE_USERNAME_RATE = env_str("LOGIN_THROTTLE_USERNAME_RATE", "10/15m")
LOGIN_THROTTLE_GLOBAL_RATE = env_str("LOGIN_THROTTLE_GLOBAL_RATE", "5/s")

PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100
# The log lists count at most this many rows for `total` (then `total_is_capped: true`) when the
# maintained counts cannot answer their filters.
LOG_LIST_COUNT_CAP = env_int("LOG_LIST_COUNT_CAP", 10_000)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_seconds("JWT_ACCESS_TOKEN_LIFETIME", "15m")),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_seconds("JWT_REFRESH_TOKEN_LIFETIME", "7d")),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "ISSUER": env_str("JWT_ISSUER") or None,
    "AUDIENCE": env_str("JWT_AUDIENCE") or None,
    "LEEWAY": env_int("JWT_LEEWAY_SECONDS", 0),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    "TOKEN_OBTAIN_SERIALIZER": "authms.api.serializers.TenantTokenObtainPairSerializer",
}

# Tokens issued by an existing AuthMS deployment: verified with its public key and
# accepted alongside our own. Unknown users named by such a token are created on first
# sight in the tenant the token names (see authms.services.user_get_or_provision).
EXTERNAL_JWT_VERIFYING_KEY = env_str("EXTERNAL_JWT_VERIFYING_KEY").replace("\\n", "\n")
EXTERNAL_JWT_ALGORITHM = env_str("EXTERNAL_JWT_ALGORITHM", "RS256")
EXTERNAL_JWT_ISSUER = env_str("EXTERNAL_JWT_ISSUER") or None
EXTERNAL_JWT_AUDIENCE = env_str("EXTERNAL_JWT_AUDIENCE") or None

SPECTACULAR_SETTINGS = {
    "TITLE": "AuthMS Communication Service",
    "DESCRIPTION": "Bulk SMS and email with per-message communication logs and an in-app inbox.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Request fields name channels by value alone; the log's field carries the labels.
    "ENUM_NAME_OVERRIDES": {"ChannelEnum": ["sms", "email", "push"]},
    "SCHEMA_PATH_PREFIX": "/" + API_PREFIX.rstrip("/"),
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "authms.api.schema.strip_trailing_slashes",
    ],
}

# GET /health shows dependency details to staff tokens and to probes sending this value
# as X-Health-Token; everyone else gets the bare status.
HEALTH_DETAIL_TOKEN = env_str("HEALTH_DETAIL_TOKEN")
# `/metrics` (Prometheus) answers only to `Authorization: Bearer <METRICS_TOKEN>`; unset: 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")
HEALTH_TIMEOUT_SECONDS = float(env_str("HEALTH_TIMEOUT_SECONDS", "2.5"))

# --- Sending -------------------------------------------------------------------------
BULK_MAX_RECIPIENTS = env_int("BULK_MAX_RECIPIENTS", 10_000)
# Room for a full bulk request (10,000 recipients of up to 320 characters, plus the text).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
BULK_THROTTLE_RATE = env_str("BULK_THROTTLE_RATE", "60/min")  # per user; N/period
# Bulk requests being expanded at once, across the deployment and per web process: the
# rest wait (503 + Retry-After) so readers keep their threads and the CPU during a spike.
# Expanding 10,000 recipients is ~2 s of CPU: one at a time on 2 web cores (make chaos S).
BULK_CONCURRENCY = env_int("BULK_CONCURRENCY", 1)
BULK_CONCURRENCY_PER_PROCESS = env_int("BULK_CONCURRENCY_PER_PROCESS", 1)
# Text is stored once per recipient: recipients × text length is capped per request.
BULK_MAX_TOTAL_CHARS = env_int("BULK_MAX_TOTAL_CHARS", 20_000_000)
SMS_MAX_LENGTH = env_int("SMS_MAX_LENGTH", 1000)
EMAIL_MAX_LENGTH = env_int("EMAIL_MAX_LENGTH", 100_000)
# Push: the body's length, and the whole notification (title, body, data, link) as JSON in bytes:
# 3,993 is what a 4,096-byte Web Push record carries after its encryption header (RFC 8291).
# Sending caps per tenant and channel (0: none); a tenant's own `send_caps` override these.
# "spend" caps the estimated cost (the price table) in SPEND_CURRENCY.
SEND_CAPS = {
    meter: {period: env_int(f"CAP_{meter.upper()}_{period.upper()}", 0) for period in ("day", "month")}
    for meter in ("sms", "email", "push", "spend")
}
SPEND_CURRENCY = env_str("SPEND_CURRENCY", "CNY")
CAPS_TIME_ZONE = env_str("CAPS_TIME_ZONE", TIME_ZONE)  # where a cap's day and month begin
# Per-recipient frequency caps (seconds, most messages) by message class, before any gateway is
# called (also the defence against SMS pumping): "code" = sensitive templates (verification
# codes; Aliyun's own limits), "notice" = everything else. FREQUENCY_CAPS=off disables them.
FREQUENCY_CAPS = (
    {}
    if env_str("FREQUENCY_CAPS") == "off"
    else {"code": [(60, 1), (3600, 5), (86400, 10)], "notice": [(86400, 50)]}
)
SCHEDULE_MAX_DAYS = env_int("SCHEDULE_MAX_DAYS", 35)  # how far ahead a bulk's send_at may be
# --- Log retention and partitions (communication/services/log_partitions.py) ---
# Logs older than this many days are purged (hourly); 0 keeps them forever. On PostgreSQL a
# month partition goes once all of it is past the retention: logs stay up to a month longer.
LOG_RETENTION_DAYS = env_int("LOG_RETENTION_DAYS", 0)
# Month partitions made ahead: each one is another table every log query plans for.
LOG_PARTITION_MONTHS_AHEAD = env_int("LOG_PARTITION_MONTHS_AHEAD", 1)
# --- Events and webhooks ---
# The feed's reach; a cursor from before it gets 410.
EVENTS_RETENTION_SECONDS = env_seconds("EVENTS_RETENTION", "30d")
WEBHOOK_SECRET_KEYS = env_str("WEBHOOK_SECRET_KEYS")  # Fernet keys (comma-separated, newest first)
# Svix's production schedule: at once, then after these delays (±20 % jitter); 8 attempts in all.
WEBHOOK_RETRY_SCHEDULE = env_str("WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h")
WEBHOOK_CONNECT_TIMEOUT = float(env_str("WEBHOOK_CONNECT_TIMEOUT", "5"))
WEBHOOK_TIMEOUT = float(env_str("WEBHOOK_TIMEOUT", "15"))  # the whole request
WEBHOOK_DISABLE_AFTER_SECONDS = env_seconds("WEBHOOK_DISABLE_AFTER", "5d")  # failing continuously
WEBHOOK_ROTATION_OVERLAP_SECONDS = env_seconds("WEBHOOK_ROTATION_OVERLAP", "24h")
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 16)  # requests in flight per sending task
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", DEBUG)
# Networks webhook URLs may reach despite the SSRF rules (local receivers in tests and dev).
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS")
PUSH_MAX_LENGTH = env_int("PUSH_MAX_LENGTH", 1000)
PUSH_MAX_PAYLOAD_BYTES = env_int("PUSH_MAX_PAYLOAD_BYTES", 3993)
SMS_DEFAULT_REGION = env_str("SMS_DEFAULT_REGION", "CN")
IDEMPOTENCY_TTL_SECONDS = env_seconds("IDEMPOTENCY_TTL", "24h")
# Absolute base for links in messages (one-click unsubscribe).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

COMMUNICATION_PROVIDERS = {
    "console": "providers.console.ConsoleProvider",
    "smtp": "providers.email.DjangoEmailProvider",
    "submail": "providers.submail.SubmailSmsProvider",
    "aliyun": "providers.aliyun.AliyunSmsProvider",
    "anymail": "providers.anymail.AnymailEmailProvider",
    "fcm": "providers.fcm.FcmProvider",
    "webpush": "providers.webpush.WebPushProvider",
}
# SMS routing: SMS_PROVIDERS=submail,aliyun tries them in that order (a message moves on only
# when a provider provably did not accept it). SMS_PROVIDER names a single one; SUBMAIL
# credentials alone switch SMS to SUBMAIL.
_SMS_ROUTE = env_list("SMS_PROVIDERS") or [
    env_str("SMS_PROVIDER", "submail" if env_str("SUBMAIL_APPID") else "console")
]
CHANNEL_PROVIDERS = {"sms": _SMS_ROUTE[0], "email": env_str("EMAIL_PROVIDER", "smtp")}  # the primaries
# Push has no route: a device belongs to one push service, and its logs go to the provider
# serving that service (the console prints them until FCM or Web Push is configured).
# FCM HTTP v1 (providers/fcm.py): the Firebase service account's JSON key, as text or a file.
FCM_SERVICE_ACCOUNT_JSON = env_str("FCM_SERVICE_ACCOUNT_JSON")
FCM_SERVICE_ACCOUNT_FILE = env_str("FCM_SERVICE_ACCOUNT_FILE")
FCM_BASE_URL = env_str("FCM_BASE_URL", "https://fcm.googleapis.com")
FCM_CONNECT_TIMEOUT = float(env_str("FCM_CONNECT_TIMEOUT", "3"))
FCM_READ_TIMEOUT = float(env_str("FCM_READ_TIMEOUT", "10"))
FCM_CONCURRENCY = env_int("FCM_CONCURRENCY", 32)  # requests in flight per provider call
# Web Push (providers/webpush.py): our VAPID key pair (`manage.py vapid_keys` makes one; keep it
# for good: a subscription is bound to the public key it was made with) and a contact for the
# push services (mailto: or https:).
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY")
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY")
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "mailto:push@example.com")
WEBPUSH_CONNECT_TIMEOUT = float(env_str("WEBPUSH_CONNECT_TIMEOUT", "3"))
WEBPUSH_READ_TIMEOUT = float(env_str("WEBPUSH_READ_TIMEOUT", "10"))
WEBPUSH_CONCURRENCY = env_int("WEBPUSH_CONCURRENCY", 16)
# How long push services keep an undelivered notification (FCM's default would be 4 weeks).
PUSH_TTL_SECONDS = env_seconds("PUSH_TTL", "1d")
PUSH_PROVIDERS = {
    "fcm": env_str(
        "PUSH_FCM_PROVIDER", "fcm" if FCM_SERVICE_ACCOUNT_JSON or FCM_SERVICE_ACCOUNT_FILE else "console"
    ),
    "webpush": env_str("PUSH_WEBPUSH_PROVIDER", "webpush" if VAPID_PRIVATE_KEY else "console"),
}
FAILOVER_PROVIDERS = {"sms": _SMS_ROUTE[1:]}  # then these, in order
# Provider health (communication/services/health.py): out of rotation at HEALTH_OUT_SHARE of
# messages not handed over in HEALTH_WINDOW (or slow calls), probed with HEALTH_PROBE_SHARE of
# the traffic, back in at HEALTH_IN_SHARE or better.
HEALTH_WINDOW_SECONDS = env_seconds("HEALTH_WINDOW", "5m")
HEALTH_MIN_MESSAGES = env_int("HEALTH_MIN_MESSAGES", 20)
HEALTH_OUT_SHARE = float(env_str("HEALTH_OUT_SHARE", "0.5"))
HEALTH_IN_SHARE = float(env_str("HEALTH_IN_SHARE", "0.1"))
HEALTH_PROBE_SHARE = float(env_str("HEALTH_PROBE_SHARE", "0.1"))
HEALTH_PROBE_WINDOW_SECONDS = env_seconds("HEALTH_PROBE_WINDOW", "2m")
HEALTH_MAX_LATENCY_SECONDS = float(env_str("HEALTH_MAX_LATENCY_SECONDS", "8"))
HEALTH_STATE_TTL_SECONDS = float(env_str("HEALTH_STATE_TTL_SECONDS", "5"))
# ... and out when HEALTH_UNDELIVERED_SHARE of what it accepted HEALTH_UNDELIVERED_AFTER to
# HEALTH_UNDELIVERED_WINDOW ago has no delivery report (providers that report deliveries only).
HEALTH_UNDELIVERED_AFTER_SECONDS = env_seconds("HEALTH_UNDELIVERED_AFTER", "5m")
HEALTH_UNDELIVERED_WINDOW_SECONDS = env_seconds("HEALTH_UNDELIVERED_WINDOW", "15m")
HEALTH_UNDELIVERED_SHARE = float(env_str("HEALTH_UNDELIVERED_SHARE", "0.3"))
DISPATCH_CHUNK_SIZE = env_int("DISPATCH_CHUNK_SIZE", 100)
DISPATCH_FANOUT = env_int("DISPATCH_FANOUT", 4)  # dispatch tasks started per batch
# Loops per dispatch task claiming and sending chunks side by side (one provider call's wait
# overlaps the others' database writes). Each holds a database connection while it runs.
DISPATCH_THREADS = env_int("DISPATCH_THREADS", 4)
# Connections a big status change (a page of reports: UPDATE_CHUNK logs per statement) uses
# side by side, each statement on its own core (PostgreSQL, outside a transaction).
STATUS_UPDATE_THREADS = env_int("STATUS_UPDATE_THREADS", 2)
# Waits between attempts of a message whose provider surely never got it (connection
# refused, 503, quota): 7 attempts over ~38 minutes, each wait ±20 % jitter, then it fails.
DISPATCH_RETRY_SCHEDULE = env_str("DISPATCH_RETRY_SCHEDULE", "30s,1m,2m,5m,10m,20m")
# A dispatch task stops claiming after this long and hands over to a new task.
DISPATCH_TASK_SECONDS = env_int("DISPATCH_TASK_SECONDS", 5)
# Recording provider answers retries this long (seconds between tries) while the database is away.
DISPATCH_RECORD_RETRY_DELAYS = [0.5, 1, 2, 4, 8, 15]
SWEEP_PENDING_AFTER_SECONDS = env_int("SWEEP_PENDING_AFTER_SECONDS", 60)
# A message of unknown outcome is reconciled with the gateway's records for this long at
# most (it should match STATUS_SYNC_LOOKBACK, how far back the records are read), then it
# fails as "Outcome unknown".
RECONCILE_DEADLINE_SECONDS = env_seconds("RECONCILE_DEADLINE", "6h")
# "No record" means "never accepted" only for a window read whole that reaches this far past
# the hand-over (the gateway may list what it accepted a little late).
RECONCILE_SETTLE_SECONDS = env_seconds("RECONCILE_SETTLE", "10m")
# A worker renews the claims of the messages in its hands this often, whatever the provider
# call is doing (services/heartbeat.py); 0 turns the heartbeat off.
CLAIM_HEARTBEAT_SECONDS = env_int("CLAIM_HEARTBEAT_SECONDS", 10)
# A claim not renewed for this long belongs to a worker that died: its messages are reconciled
# (or fail as unknown where the provider cannot be asked). Keep it a few heartbeats long; with
# the heartbeat off it must exceed the longest provider call (SUBMAIL: 2 x (3 + 15) s).
STALE_CLAIM_SECONDS = env_int("STALE_CLAIM_SECONDS", 30)

# Aliyun SMS (dysmsapi 2017-05-25): approved templates only (docs/ALIYUN.md).
ALIYUN_ACCESS_KEY_ID = env_str("ALIYUN_ACCESS_KEY_ID")
ALIYUN_ACCESS_KEY_SECRET = env_str("ALIYUN_ACCESS_KEY_SECRET")
ALIYUN_SMS_SIGN_NAME = env_str("ALIYUN_SMS_SIGN_NAME")  # an approved signature, without 【】
ALIYUN_SMS_BASE_URL = env_str("ALIYUN_SMS_BASE_URL", "https://dysmsapi.aliyuncs.com")
ALIYUN_SIGNATURE_VERSION = env_str("ALIYUN_SIGNATURE_VERSION", "v3")  # v3 | v2
ALIYUN_CONNECT_TIMEOUT = float(env_str("ALIYUN_CONNECT_TIMEOUT", "3"))
ALIYUN_READ_TIMEOUT = float(env_str("ALIYUN_READ_TIMEOUT", "10"))
ALIYUN_CHUNK_SIZE = env_int("ALIYUN_CHUNK_SIZE", 100)  # numbers per SendBatchSms call (≤ 100)
# The secret path segment of the receipts URL Aliyun pushes to (its receipts are unsigned).
ALIYUN_RECEIPT_TOKEN = env_str("ALIYUN_RECEIPT_TOKEN")

SUBMAIL_APPID = env_str("SUBMAIL_APPID")
SUBMAIL_APPKEY = env_str("SUBMAIL_APPKEY")
SUBMAIL_SIGN_TYPE = env_str("SUBMAIL_SIGN_TYPE", "md5")  # normal | md5 | sha1
SUBMAIL_BASE_URL = env_str("SUBMAIL_BASE_URL", "https://api-v4.mysubmail.com")
SUBMAIL_SIGNATURE = env_str("SUBMAIL_SIGNATURE")  # e.g. 【Acme】, prefixed when the text has none
SUBMAIL_CONNECT_TIMEOUT = float(env_str("SUBMAIL_CONNECT_TIMEOUT", "3"))
SUBMAIL_READ_TIMEOUT = float(env_str("SUBMAIL_READ_TIMEOUT", "15"))
SUBMAIL_CHUNK_SIZE = env_int("SUBMAIL_CHUNK_SIZE", 50)  # SUBMAIL recommends at most 50 per multisend
SUBMAIL_SUBHOOK_KEY = env_str("SUBMAIL_SUBHOOK_KEY")
# How long a push's one-time token is remembered (replays within it are refused).
RECEIPT_TOKEN_RETENTION_SECONDS = env_seconds("RECEIPT_TOKEN_RETENTION", "30d")
# Pushed receipts not applied this long after they came (their task was lost with a worker or
# the broker) are applied by the sweeper.
PUSHED_REPORTS_SWEEP_AFTER_SECONDS = env_seconds("PUSHED_REPORTS_SWEEP_AFTER", "60s")
# Delivery-status polling (sms/log): how far back each window reaches, how much consecutive
# windows overlap (late carrier reports), and rows per call.
STATUS_SYNC_LOOKBACK_SECONDS = env_seconds("STATUS_SYNC_LOOKBACK", "6h")
STATUS_SYNC_OVERLAP_SECONDS = env_seconds("STATUS_SYNC_OVERLAP", "30m")
STATUS_SYNC_ROWS = env_int("STATUS_SYNC_ROWS", 500)

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "AuthMS <no-reply@localhost>")
EMAIL_MESSAGE_ID_DOMAIN = env_str("EMAIL_MESSAGE_ID_DOMAIN", "authms.local")
# ESPs through django-anymail (EMAIL_PROVIDER=anymail, EMAIL_BACKEND=anymail.backends.<esp>.
# EmailBackend): every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"], e.g.
# ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_MAILGUN_API_KEY, ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY,
# ANYMAIL_WEBHOOK_SECRET (user:password of the tracking webhooks' basic auth).
ANYMAIL = env_prefixed("ANYMAIL_")
# Connect and read timeouts of every ESP API call; per-recipient status is read, not raised.
ANYMAIL["REQUESTS_TIMEOUT"] = (
    float(env_str("EMAIL_ESP_CONNECT_TIMEOUT", "3")),
    float(env_str("EMAIL_ESP_READ_TIMEOUT", "15")),
)
ANYMAIL["IGNORE_RECIPIENT_STATUS"] = True
EMAIL_ESP_CHUNK_SIZE = env_int("EMAIL_ESP_CHUNK_SIZE", 100)  # recipients per batch call
# Bounce policy: a hard bounce or a complaint suppresses the address at once; soft bounces of
# EMAIL_SOFT_BOUNCE_LIMIT different messages within EMAIL_SOFT_BOUNCE_WINDOW do too.
EMAIL_SOFT_BOUNCE_LIMIT = env_int("EMAIL_SOFT_BOUNCE_LIMIT", 3)
EMAIL_SOFT_BOUNCE_WINDOW_SECONDS = env_seconds("EMAIL_SOFT_BOUNCE_WINDOW", "7d")

# --- Push devices (communication/push_targets.py) ------------------------------------------------
# A Web Push endpoint must be https on a public host; by default only the browsers' push services
# (suffix match). An empty WEBPUSH_ENDPOINT_HOSTS allows any public host.
WEBPUSH_ENDPOINT_HOSTS = env_list(
    "WEBPUSH_ENDPOINT_HOSTS",
    "fcm.googleapis.com,push.services.mozilla.com,notify.windows.com,push.apple.com",
)
WEBPUSH_ALLOW_HTTP = env_bool("WEBPUSH_ALLOW_HTTP", DEBUG)
# Loopback and private addresses are refused (SSRF); only local fakes in tests turn this on.
WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = env_bool("WEBPUSH_ALLOW_PRIVATE_ENDPOINTS", False)
DEVICES_PER_USER = env_int("DEVICES_PER_USER", 20)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
# Without a broker the embedded run executes tasks inline, so no worker is needed.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 3)
# Socket timeouts on every broker call (publish included): a hung broker (TCP accepted, no
# answer) costs a request a few seconds, and the sweeper publishes what could not be.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
}
CELERY_TIMEZONE = "UTC"
# A down or hung broker must not hold a request: one attempt, bounded by the socket timeouts
# below; the sweeper publishes from the database what could not be published now.
CELERY_TASK_PUBLISH_RETRY = False
# Webhook deliveries have their own queue and workers (`celery -A authms worker -Q webhooks`), so
# a slow tenant endpoint can never hold up sending messages.
CELERY_TASK_ROUTES = {"communication.tasks.send_webhooks": {"queue": env_str("WEBHOOK_QUEUE", "webhooks")}}
CELERY_BEAT_SCHEDULE = {
    "sweep-pending": {"task": "communication.tasks.sweep_pending", "schedule": 15.0},
    "purge-idempotency-keys": {"task": "communication.tasks.purge_idempotency_keys", "schedule": 3600.0},
    "purge-receipt-tokens": {"task": "communication.tasks.purge_receipt_tokens", "schedule": 3600.0},
    "purge-revoked-tokens": {"task": "authms.tasks.purge_revoked_tokens", "schedule": 3600.0},
    "sync-delivery-status": {"task": "communication.tasks.sync_delivery_status", "schedule": 60.0},
    "provider-health": {"task": "communication.tasks.check_provider_health", "schedule": 30.0},
    "fold-log-counts": {"task": "communication.tasks.fold_log_counts", "schedule": 30.0},
    "sequence-events": {"task": "communication.tasks.sequence_events", "schedule": 2.0},
    "send-webhooks": {"task": "communication.tasks.send_webhooks", "schedule": 2.0},
    "purge-events": {"task": "communication.tasks.purge_events", "schedule": 3600.0},
    "log-partitions": {"task": "communication.tasks.log_partitions", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "authms.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: one line per push message.
    "loggers": {"django.server": {"level": "INFO"}, "httpx": {"level": "WARNING"}},
}

# --- Transport security (README "Production") ------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO (the proxy
# must overwrite that header), then SECURE_SSL_REDIRECT, SECURE_COOKIES and HSTS.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe health over plain HTTP.
SECURE_REDIRECT_EXEMPT = [rf"^{API_PREFIX}health/?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
