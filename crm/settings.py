"""One settings module for every environment, driven by environment variables.

Without any variable set, the app runs as the demo: SQLite in the project folder and an
embedded Celery broker on the file system, so `make run` needs no server.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PROGRESSION_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_flag("DEBUG", True)
DEVELOPMENT_SECRET_KEY = "insecure-local-development-key-never-use-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", "")


def refuse_weak_secret_key(key: str) -> None:
    """Production never starts with a key someone could guess or has seen: sessions,
    password-reset links and CSRF tokens are all signed with it."""
    if not key:
        raise ImproperlyConfigured("Set SECRET_KEY when DEBUG is off.")
    if (len(key) < 50 or len(set(key)) < 5 or key == DEVELOPMENT_SECRET_KEY
            or key.startswith("django-insecure")):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use at least 50 random characters, not "
            "the development key (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )


if not DEBUG:
    refuse_weak_secret_key(SECRET_KEY)
elif not SECRET_KEY:
    SECRET_KEY = DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "ninja",  # the API docs page's Swagger UI, served from static files
    "csp",
    "axes",
    "crm",
    "pipeline",
    "forecasting",
]

MIDDLEWARE = [
    # Load balancers and the compose health check ask by IP over plain HTTP: answered
    # before the host check, the SSL redirect and the request log.
    "crm.health.answer_health_checks",
    "crm.middleware.log_requests",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "crm.middleware.refuse_nul_characters",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so it sees the failed login that the authentication backend refused.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

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
                "django.template.context_processors.i18n",
                "crm.context_processors.company",
                "crm.context_processors.unread_notifications",
                "pipeline.context_processors.orders_waiting",
                "pipeline.context_processors.may_import",
            ],
        },
    },
]

# Database: PostgreSQL in CI and production, a SQLite file for the demo. SQLite runs in
# WAL mode with IMMEDIATE transactions so the web server and the Celery worker can both
# write without "database is locked" errors in the middle of a transaction.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# PostgreSQL connections come from a pool in each process (psycopg's, through Django),
# never one kept per thread: a server that starts a thread per request (runserver) would
# otherwise keep a connection per thread it ever started, until PostgreSQL refuses more
# clients. A process holds at most DATABASE_POOL_SIZE connections; a request beyond them
# waits for one to come back. See docs/deploy.md for servers and sizes.
DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", "8"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
        # With a pool, this checks a connection as the pool hands it out: one the server
        # dropped is replaced before a request gets it.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            # A request waits this long for a free connection before it fails.
            "timeout": 20,
        }
        # No JIT compilation: the planner's costs for the forecast's correlated subqueries
        # run into the millions, and compiling them took 1.5 s of a 1.6 s query
        # (bench/forecast.py, docs/benchmarks.md); no query of this app gains from it.
        DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
        # A server that does not answer fails a connection in seconds, not minutes.
        DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "progression.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "crm" / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Purchase orders' documents: outside every public URL, served only through a view that
# checks who may see the opportunity. Back this folder up with the database.
DOCUMENTS_ROOT = Path(os.environ.get("PROGRESSION_DOCUMENTS_DIR", VAR_DIR / "documents"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "documents": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                  "OPTIONS": {"location": DOCUMENTS_ROOT, "base_url": None}},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# The company's own currency: every total is in it. Amounts in other currencies are
# converted with the exchange rates sales ops keep.
COMPANY_CURRENCY = os.environ.get("COMPANY_CURRENCY", "EUR").upper()
# First month of the fiscal year (1 = January); every quarter in the app follows it.
FISCAL_YEAR_START_MONTH = int(os.environ.get("FISCAL_YEAR_START_MONTH", "1"))
if not 1 <= FISCAL_YEAR_START_MONTH <= 12:
    raise ImproperlyConfigured("FISCAL_YEAR_START_MONTH must be between 1 and 12.")

# Celery: Redis when REDIS_URL is set, otherwise kombu's file-system transport, which
# needs no server and lets `make run` start a worker and beat on a fresh machine.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
if not CELERY_BROKER_URL:
    BROKER_DIR = VAR_DIR / "broker"
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# An import's progress: written by the worker beside the import's one transaction (which no
# other connection sees until it commits) and read by the page's progress bar, so shared
# by every process: Redis when there is one, files under var/ for `make run`.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "progress": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL else
        {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
         "LOCATION": str(VAR_DIR / "progress")}
    ),
}
# A change must never wait for a broker that is down: publishing gives up quickly and the
# periodic sweep delivers what was left in the outbox.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS.setdefault("max_retries", 1)
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_flag("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # Timeouts are a swept deadline column, never delayed tasks (see stack notes).
    "warn-owners-of-deadlines": {
        "task": "pipeline.tasks.warn_owners_of_deadlines",
        "schedule": timedelta(hours=1),
    },
    "park-overdue-opportunities": {
        "task": "pipeline.tasks.park_overdue_opportunities",
        "schedule": timedelta(minutes=15),
    },
    "deliver-notifications": {
        "task": "crm.tasks.deliver_pending_notifications",
        "schedule": timedelta(minutes=1),
    },
    "clear-expired-sessions": {
        "task": "crm.tasks.clear_expired_sessions",
        "schedule": timedelta(days=1),
    },
    "forget-abandoned-import-files": {
        "task": "pipeline.tasks.forget_abandoned_import_files",
        "schedule": timedelta(days=1),
    },
    # Hourly, though weekly: the first run of a week takes its snapshot, the others find
    # it taken.
    "take-weekly-forecast-snapshot": {
        "task": "forecasting.tasks.take_weekly_snapshot",
        "schedule": timedelta(hours=1),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_flag("EMAIL_USE_TLS", False)
# A mail server that hangs must not hold the sweep (or SQLite's write lock) forever.
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
# Folder of the file-based backend (EMAIL_BACKEND=django.core.mail.backends.filebased...),
# which the integration tests give a Celery worker.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "progression@localhost")
# Where people reach the app: e-mails link to it (a worker has no request to ask).
SITE_URL = os.environ.get(
    "SITE_URL", f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
).rstrip("/")

# Production hardening: on whenever DEBUG is off, so `check --deploy` reports nothing.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", True)
    # Trusted as it comes: the proxy in front must set (overwrite) this header on every
    # request, or a client could claim HTTPS itself (docs/deploy.md).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # crm.health answers /healthz before the redirect; this keeps it plain HTTP should the
    # middleware order ever change.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Sessions end after SESSION_IDLE_MINUTES without a request: each request renews the
# cookie and the stored session, so an idle one expires and a working one does not.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_MINUTES", "240")) * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Password-reset links work once and for this long.
PASSWORD_RESET_TIMEOUT = 60 * 60 * 3

# Content security policy, in every environment so tests and `make run` see what
# production does: scripts, styles, images and fonts only from our own static files; no
# inline script or style, no eval (htmx's is switched off in base.html), no frames.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords in a row for a
# username, from the same address, that pair is locked out for AXES_COOLOFF_TIME with a
# 429 page; the app's login and the admin's alike. A successful login resets the count.
# Keyed on username and address together, so one attacker cannot lock everyone out.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Trying again while locked out does not extend the lockout.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "crm.views.locked_out"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Its admin pages would unlock by deleting rows; lockouts expire by themselves, and
# `manage.py axes_reset_username NAME` lifts one early (docs/deploy.md).
AXES_ENABLE_ADMIN = False

# LOG_FORMAT=json: every line is one JSON object, and every request logs one line with
# its method, path, status, duration and user (crm.middleware.log_requests).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text").strip().lower()
# The worker and beat then log through the same JSON handler instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "crm.logs.JsonFormatter"}},
    "handlers": {"console": {
        "class": "logging.StreamHandler",
        **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
    }},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Without JSON, runserver and gunicorn already log each request in their own way.
    "loggers": {"progression.requests": {
        "level": "INFO" if LOG_FORMAT == "json" else "WARNING"}},
}

# How many cards a board column shows before "load more".
BOARD_COLUMN_SIZE = int(os.environ.get("BOARD_COLUMN_SIZE", "25"))

# Dead pool (issue 11): an opportunity dead for less than this many days reopens in the
# stage it died in, its earlier gates' evidence kept; an older one starts again in
# Identifying. The pool's page lists this many rows at a time.
PROGRESSION_REOPEN_WINDOW_DAYS = int(os.environ.get("PROGRESSION_REOPEN_WINDOW_DAYS", "30"))
DEAD_POOL_PAGE_SIZE = int(os.environ.get("DEAD_POOL_PAGE_SIZE", "50"))
