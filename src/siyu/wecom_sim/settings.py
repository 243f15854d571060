"""Django settings for the WeCom emulator: a separate server with its own database and port.

Started by ``siyu sim``. Nothing of the product is installed here, so the emulator can only be
reached the way the product reaches real WeCom: over HTTP.
"""

from __future__ import annotations

from siyu.conf import database_config, env, env_bool, env_int, var_dir

VAR_DIR = var_dir()
SECRET_KEY = env("SIM_SECRET_KEY", "siyu-sim-insecure-key-0123456789-0123456789")
DEBUG = env_bool("SIM_DEBUG", False)
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "siyu.wecom_sim"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "siyu.wecom_sim.urls"
DATABASES = {"default": database_config(env("SIM_DATABASE_URL"), "sim.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # The emulated WeCom's data need not survive a power cut of this machine: commits do not wait
    # for the WAL flush (still atomic and consistent), so the emulator's latency is its own work,
    # not the disk's. No per-request health-check round trip either.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
USE_I18N = False
DATA_UPLOAD_MAX_MEMORY_SIZE = 25 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 25 * 1024 * 1024

# The identity of the simulated corp. Defaults are printed by `siyu sim` and written in README.md.
SIM_CORP_ID = env("SIM_CORP_ID", "ww5iyu0000demo0001")
SIM_SECRET = env("SIM_SECRET", "siyu-sim-contact-secret-0000000000000000000")
# A self-built app's secret (app messages, media): its own identity with its own tokens.
SIM_APP_SECRET = env("SIM_APP_SECRET", "siyu-sim-app-secret-000000000000000000000000")
SIM_AGENT_ID = env_int("SIM_AGENT_ID", 1000002)
# Where the emulator sends its encrypted callbacks, and the key material the product configured.
# The control API (/sim/config) can change them at run time.
SIM_CALLBACK_URL = env("SIM_CALLBACK_URL")
SIM_CALLBACK_TOKEN = env("SIM_CALLBACK_TOKEN", "siyuSimCallbackToken")
SIM_CALLBACK_AES_KEY = env("SIM_CALLBACK_AES_KEY", "c2l5dVNpbUNhbGxiYWNrQWVzS2V5MDEyMzQ1Njc4OTA")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"siyu": {"handlers": ["console"], "level": env("SIM_LOG_LEVEL", "INFO"), "propagate": False}},
}
