"""Django settings for the Siyu product (console, REST API, callback endpoint, worker).

Everything comes from environment variables; the defaults run the embedded set-up
(SQLite in ./var, one web process and one worker). See README.md for the variables.
"""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext_lazy as _

from siyu.conf import database_config, env, env_bool, env_int, var_dir

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = var_dir()

SECRET_KEY = env("SIYU_SECRET_KEY", "siyu-dev-insecure-change-me-in-production-0123456789")
DEBUG = env_bool("SIYU_DEBUG", False)
ALLOWED_HOSTS = [h for h in env("SIYU_ALLOWED_HOSTS", "*").split(",") if h]
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
    "siyu.channels",
    "siyu.broadcasts",
    "siyu.transfers",
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
                "siyu.core.context_processors.console",
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

# Callbacks: refuse envelopes whose signed timestamp is further than this from now (replays);
# process inline in the request instead of in the worker (only for the benchmark's baseline).
SIYU_CALLBACK_MAX_AGE_S = env_int("SIYU_CALLBACK_MAX_AGE_S", 3600)
SIYU_CALLBACK_INLINE = env_bool("SIYU_CALLBACK_INLINE", False)

# Worker: how long a claimed inbox row stays leased before another worker may take it over.
SIYU_WORKER_LEASE_S = env_int("SIYU_WORKER_LEASE_S", 60)

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
