"""Django settings for the Siyu product (console, REST API, callback endpoint, worker).

Everything comes from environment variables; the defaults run the embedded set-up
(SQLite in ./var, one web process and one worker). See README.md for the variables.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

from siyu.conf import (
    database_config,
    env,
    env_bool,
    env_int,
    persistent_secret,
    var_dir,
)

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()

DEBUG = env_bool("SIYU_DEBUG", False)
CSRF_TRUSTED_ORIGINS = [o for o in env("SIYU_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    # django-ninja: in INSTALLED_APPS so the API docs use its bundled Swagger UI (static files
    # served by WhiteNoise), never a CDN.
    "ninja",
    "siyu.core",
    "siyu.accounts",
    "siyu.wecom",
    "siyu.org",
    "siyu.customers",
    "siyu.groups",
    "siyu.profiles",
    "siyu.commerce",
    "siyu.insights",
    "siyu.segments",
    "siyu.channels",
    "siyu.broadcasts",
    "siyu.transfers",
    "siyu.materials",
    "siyu.signin",
    "siyu.links",
    "siyu.guidetasks",
    "siyu.attribution",
    "siyu.sidebar",
    "siyu.sync",
    "axes",  # login throttling: see the security block below
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "siyu.core.middleware.ConsoleLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # last, as django-axes requires: turns a locked-out sign-in into the lock-out answer
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "siyu.accounts.context_processors.console",
            ],
        },
    },
]

DATABASES = {"default": database_config(env("DATABASE_URL"), "siyu.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("SIYU_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves /static/ under gunicorn. Files are found through the staticfiles finders
# (the apps' static/ directories inside the installed package), so no collectstatic step is
# needed; a collected STATIC_ROOT is served too when present. Plain (non-manifest) storage:
# a manifest storage would make {% static %} fail until collectstatic has run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at start-up about a missing root
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# === Security: secret key, hosts, login throttling, cookies, headers, CSP ===================
# (issue 14, defect 9). Every variable here is in README's configuration table.

# SECRET_KEY: from the environment, else generated on first start and kept in the var directory
# (mode 0600), so sessions survive restarts and every process of one installation agrees.
SECRET_KEY = env("SIYU_SECRET_KEY") or persistent_secret(VAR_DIR / "secret.key", get_random_secret_key)

# Hosts this installation answers to; a deployment behind a domain sets SIYU_ALLOWED_HOSTS.
ALLOWED_HOSTS = [h.strip() for h in env("SIYU_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]

# Wrong passwords (django-axes): after SIYU_LOGIN_FAILURE_LIMIT failures for one user name, or
# from one IP address, sign-in is refused for SIYU_LOGIN_COOLOFF_MINUTES (the right password
# included), with the message of siyu.accounts.views.locked_out. API tokens are not affected
# (they never pass through authenticate()). Only failures are stored (no per-login access log).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("SIYU_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("SIYU_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SIYU_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one reaching the limit locks
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_LOCKOUT_CALLABLE = "siyu.accounts.views.locked_out"
AXES_VERBOSE = False
# The per-IP count uses REMOTE_ADDR (django-ipware is not installed): behind a reverse proxy it
# counts the proxy's address, so keep the per-user limit in mind when raising this one.

# HTTPS: `siyu demo` and a plain `siyu serve` speak http on 127.0.0.1, where secure cookies would
# never come back; a deployment behind https says so with SIYU_HTTPS=1.
SIYU_HTTPS = env_bool("SIYU_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SIYU_HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SIYU_HSTS_SECONDS", 31536000) if SIYU_HTTPS and not DEBUG else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SIYU_HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# A request body read into memory (JSON, form fields; not uploaded files): 10 MB, so that a CDP
# batch of 1,000 events with their properties (up to 8 KB each) fits; more answers 413 (REST).
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4), always on: scripts only from our own static files (the
# templates have no inline script or handler; htmx is told not to eval, see skeleton.html).
# style-src keeps 'unsafe-inline': templates use a few style="" attributes and ECharts and htmx
# set element styles; styles cannot run code. img-src data:/blob: for ECharts' exports and the
# Swagger UI's icons, and WeCom's avatar hosts (avatars are URLs on wx.qlogo.cn / p.qlogo.cn /
# wework.qpic.cn, shown on the profile page over https). The API docs page (ninja's Swagger UI,
# /api/v1/docs) needs no exception: it starts from a static file and reads its settings from a
# JSON <script> block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", "https://*.qlogo.cn", "https://*.qpic.cn"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# === end of the security block ==============================================================

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TASKS = {
    "default": {
        "BACKEND": env("SIYU_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "sync"],
    }
}

# --- WeCom -------------------------------------------------------------------------------
# Defaults for the connection; the console's settings page can override each one
# (siyu.wecom.selectors.effective_config). Pointing Siyu at real WeCom is a change of these only.
WECOM = {
    "CORP_ID": env("WECOM_CORP_ID"),
    "API_BASE": env("WECOM_API_BASE", "https://qyapi.weixin.qq.com"),
    "API_BASE_SET": bool(env("WECOM_API_BASE")),  # the console shows the base as "default" when not
    "CONTACT_SECRET": env("WECOM_CONTACT_SECRET"),
    "APP_SECRET": env("WECOM_APP_SECRET"),
    "AGENT_ID": env("WECOM_AGENT_ID"),
    "CALLBACK_TOKEN": env("WECOM_CALLBACK_TOKEN"),
    "CALLBACK_AES_KEY": env("WECOM_CALLBACK_AES_KEY"),
    "TIMEOUT_S": float(env("WECOM_TIMEOUT_S", "10")),
    # Backoff on 45009/45033/-1: attempts and the first delay (doubled each time).
    "RATE_LIMIT_RETRIES": env_int("WECOM_RATE_LIMIT_RETRIES", 4),
    "RATE_LIMIT_BACKOFF_S": float(env("WECOM_RATE_LIMIT_BACKOFF_S", "0.5")),
}

# The Fernet key(s) encrypting the WeCom secrets saved in the console (comma-separated to rotate:
# the first encrypts); empty: a key generated once in <SIYU_VAR_DIR>/field.key (siyu.wecom.fields).
SIYU_FIELD_KEY = env("SIYU_FIELD_KEY", "")

# Callbacks: refuse envelopes whose signed timestamp is further than this from now (replays);
# process inline in the request instead of in the worker (only for the benchmark's baseline).
SIYU_CALLBACK_MAX_AGE_S = env_int("SIYU_CALLBACK_MAX_AGE_S", 3600)
SIYU_CALLBACK_INLINE = env_bool("SIYU_CALLBACK_INLINE", False)
# Trackable links (/l/<code>) answered on the event loop (siyu.asgi); off only for the benchmark's
# baseline, which sends them through the Django view and its middleware.
SIYU_LINK_FAST_PATH = env_bool("SIYU_LINK_FAST_PATH", True)

# Worker: how long a claimed inbox row stays leased before another worker may take it over.
SIYU_WORKER_LEASE_S = env_int("SIYU_WORKER_LEASE_S", 60)
# Worker: read phases of a claimed inbox batch run concurrently in this many threads (0 or 1: one
# after the other); a write transaction is committed once it has run this long (seconds).
SIYU_WORKER_READ_THREADS = env_int("SIYU_WORKER_READ_THREADS", 8)
SIYU_WORKER_TX_BUDGET_S = float(env("SIYU_WORKER_TX_BUDGET_S", "0.05"))

# `siyu serve`: the address, web processes, and threads per process running the console and
# REST API (WSGI under uvicorn); the command's options override them.
SIYU_HOST = env("SIYU_HOST", "127.0.0.1")
SIYU_PORT = env_int("SIYU_PORT", 8000)
# Where employees reach this installation (links in WeCom app messages: the guides' morning
# summary opens their task list); behind a proxy set it to the public address.
SIYU_PUBLIC_URL = env("SIYU_PUBLIC_URL", f"http://{SIYU_HOST}:{SIYU_PORT}").rstrip("/")
SIYU_WEB_WORKERS = env_int("SIYU_WEB_WORKERS", 2)
SIYU_WEB_THREADS = env_int("SIYU_WEB_THREADS", 8)
# `siyu worker`: lower the worker's CPU priority by this much (0 keeps it); --nice overrides it.
SIYU_WORKER_NICE = env_int("SIYU_WORKER_NICE", 10)

# Mass messaging (群发): WeCom calls per minute for a broadcast's sends (0: as fast as the
# gateway's backoff allows); audience keys per planning step (a step is one transaction).
SIYU_MASS_CALLS_PER_MIN = env_int("SIYU_MASS_CALLS_PER_MIN", 0)
SIYU_BROADCAST_PLAN_CHUNK = env_int("SIYU_BROADCAST_PLAN_CHUNK", 100_000)
# WeCom's frequency rule for each customer / group (one of broadcasts.caps.MODES; the corp's
# WeCom edition decides which applies) and Moments caps per customer (0: no cap of our own).
SIYU_MASS_CUSTOMER_QUOTA = env("SIYU_MASS_CUSTOMER_QUOTA", "days_in_month")
SIYU_MASS_GROUP_QUOTA = env("SIYU_MASS_GROUP_QUOTA", "days_in_month")
SIYU_MOMENT_DAILY_CAP = env_int("SIYU_MOMENT_DAILY_CAP", 0)
SIYU_MOMENT_MONTHLY_CAP = env_int("SIYU_MOMENT_MONTHLY_CAP", 0)
# Live results of mass messages and Moments (siyu.broadcasts.services.next_sync_at): first read
# FIRST_S after sending, then every FAST_S for the first day, then every SLOW_S until FOR_S after
# sending; at most
# SYNC_MAX_CALLS WeCom calls per sync run (the rest continues in the next run). The console's
# task pages refresh every POLL_S seconds while a task is live.
SIYU_BROADCAST_SYNC_FIRST_S = env_int("SIYU_BROADCAST_SYNC_FIRST_S", 60)
SIYU_BROADCAST_SYNC_FAST_S = env_int("SIYU_BROADCAST_SYNC_FAST_S", 300)
SIYU_BROADCAST_SYNC_SLOW_S = env_int("SIYU_BROADCAST_SYNC_SLOW_S", 3600)
SIYU_BROADCAST_SYNC_FOR_S = env_int("SIYU_BROADCAST_SYNC_FOR_S", 3 * 24 * 3600)
SIYU_BROADCAST_SYNC_MAX_CALLS = env_int("SIYU_BROADCAST_SYNC_MAX_CALLS", 200)
SIYU_BROADCAST_POLL_S = env_int("SIYU_BROADCAST_POLL_S", 15)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "siyu": {"handlers": ["console"], "level": env("SIYU_LOG_LEVEL", "INFO"), "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
