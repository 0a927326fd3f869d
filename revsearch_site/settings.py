"""RevSearch settings: every value comes from the environment, with defaults for one laptop."""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}")
    return value


def env_float(name: str, default: float, above: float | None = None) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if above is not None and not value > above:
        raise ImproperlyConfigured(f"{name}={value}: must be more than {above}")
    return value


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name, "").strip()
    return Path(raw).expanduser().resolve() if raw else default


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: choose one of {', '.join(choices)}")
    return value


# --- Where things live -------------------------------------------------------------------------------
HOME_DIR = env_path("REVSEARCH_HOME", BASE_DIR / "var")
INBOX_DIR = env_path("REVSEARCH_INBOX", HOME_DIR / "inbox")
MEDIA_ROOT = HOME_DIR / "media"
QUERY_DIR = HOME_DIR / "queries"
LOG_DIR = HOME_DIR / "logs"
MILVUS_LITE_DIR = HOME_DIR / "milvus"

# --- Ports and services: the embedded defaults sit next to the web port, so two homes with two ports
# run side by side without clashing.
PORT = env_int("REVSEARCH_PORT", 8000, minimum=1)
BIND_ADDRESS = env_str("REVSEARCH_BIND", "127.0.0.1")
WORKER_CONCURRENCY = env_int("REVSEARCH_WORKERS", os.cpu_count() or 1, minimum=1)
REDIS_EMBEDDED = not os.environ.get("REDIS_URL", "").strip()
REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:{PORT + 1}/0")
MILVUS_EMBEDDED = not os.environ.get("MILVUS_URI", "").strip()
MILVUS_URI = env_str("MILVUS_URI", f"http://127.0.0.1:{PORT + 2}")
MILVUS_TOKEN = env_str("MILVUS_TOKEN", "")
# Strong: a search sees every face stored before it, and waits for that on a Milvus server (about 200 ms a
# search on the standalone server, measured by `manage.py benchmark_vectors`). Bounded: answers at once, and may
# miss faces stored in the last few seconds. Milvus Lite answers at once either way.
MILVUS_SEARCH_CONSISTENCY = env_choice(
    "REVSEARCH_SEARCH_CONSISTENCY", "Strong", ("Strong", "Bounded", "Session", "Eventually")
)

# --- Faces -----------------------------------------------------------------------------------------
FACE_MODEL = env_choice("REVSEARCH_FACE_MODEL", "casia-webface", ("casia-webface", "vggface2", "dlib-resnet"))
# One collection per face model: embeddings of different models are never compared, and their sizes differ.
MILVUS_COLLECTION = env_str("MILVUS_COLLECTION", "faces_" + FACE_MODEL.replace("-", "_"))
TORCH_HOME = env_path("TORCH_HOME", Path("~/.cache/torch").expanduser())
TORCH_THREADS = env_int("REVSEARCH_TORCH_THREADS", 1, minimum=1)
FACE_MIN_PROBABILITY = env_float("REVSEARCH_FACE_MIN_PROBABILITY", 0.95)
FACE_MIN_SIZE = env_int("REVSEARCH_FACE_MIN_SIZE", 40, minimum=1)
FACE_DETECT_MAX_SIDE = env_int("REVSEARCH_FACE_DETECT_MAX_SIDE", 1280, minimum=160)
# The watcher reads a file once nothing touched it for INBOX_QUIET_SECONDS after its writer closed it (or it was
# renamed into place); for INBOX_STABLE_SECONDS when no writer was seen (moved in from another disk, a network
# folder); for INBOX_OPEN_SECONDS when a writer was seen that has not closed it yet (it may pause and go on).
INBOX_QUIET_SECONDS = env_float("REVSEARCH_INBOX_QUIET_SECONDS", 1.0, above=0)
INBOX_STABLE_SECONDS = env_float("REVSEARCH_INBOX_STABLE_SECONDS", 5.0, above=0)
INBOX_OPEN_SECONDS = env_float("REVSEARCH_INBOX_OPEN_SECONDS", 60.0, above=0)
# A file deleted from the inbox leaves its asset `missing`; with this on, its faces leave the index too (off by
# default, so that a folder unmounted for a while does not empty the index).
MISSING_REMOVES_FACES = env_bool("REVSEARCH_MISSING_REMOVES_FACES", False)
# Photos above this many pixels are refused rather than decoded (a decompression bomb guard).
MAX_IMAGE_PIXELS = env_int("REVSEARCH_MAX_IMAGE_PIXELS", 100_000_000, minimum=1)
# For a face model with no calibration (see media_index/calibration.py): the L2 distance below which two faces
# are called the same person, and where the 0-100 score is 50.
MATCH_DISTANCE = env_float("REVSEARCH_MATCH_DISTANCE", 1.0)
# Videos: frames sampled per second of video, frames embedded per batch and stored per transaction, and how long
# one task works on a video before a new task carries on (so long videos never hold a worker for hours).
VIDEO_SAMPLE_FPS = env_float("REVSEARCH_VIDEO_SAMPLE_FPS", 1.0, above=0)
VIDEO_CHUNK_FRAMES = env_int("REVSEARCH_VIDEO_CHUNK_FRAMES", 8, minimum=1)
VIDEO_SLICE_SECONDS = env_int("REVSEARCH_VIDEO_SLICE_SECONDS", 300, minimum=1)
SEARCH_TOP_K = env_int("REVSEARCH_SEARCH_TOP_K", 20, minimum=1)
MAX_UPLOAD_BYTES = env_int("REVSEARCH_MAX_UPLOAD_MB", 25, minimum=1) * 1024 * 1024

# --- Django ----------------------------------------------------------------------------------------
DEBUG = env_bool("REVSEARCH_DEBUG", False)
ALLOWED_HOSTS = env_str("REVSEARCH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env_str("REVSEARCH_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Behind a TLS-terminating proxy (the production deployment): secure cookies, redirects to HTTPS, HSTS, and the
# proxy's X-Forwarded-Proto trusted. Off by default, so `make run` works over plain HTTP on this machine.
HTTPS = env_bool("REVSEARCH_HTTPS", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks ask over plain HTTP from inside
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("REVSEARCH_HSTS_SECONDS", 3600, minimum=1)
    # HSTS for every subdomain, and browsers' preload lists, bind the whole domain for a long time: that is the
    # domain owner's decision, not this service's.
    SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]


def _secret_key() -> str:
    """The key comes from DJANGO_SECRET_KEY, or is made once and kept in the home."""
    if key := os.environ.get("DJANGO_SECRET_KEY", "").strip():
        return key
    key_file = HOME_DIR / "secret_key"
    if not key_file.exists():
        HOME_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_results",
    "media_index",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "revsearch_site.urls"
WSGI_APPLICATION = "revsearch_site.wsgi.application"
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{HOME_DIR / 'db.sqlite3'}", conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and watcher write the same file: wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        # In WAL mode, NORMAL syncs at checkpoints rather than at every commit; a crash of the process cannot
        # corrupt the database, only a power cut can lose the last commits (sqlite.org, "pragma synchronous").
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "/media/"
# WhiteNoise serves the apps' static files straight from their folders: no collectstatic step.
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES

# --- Celery ----------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
# Every task's outcome is kept in the database (django-celery-results), where the admin lists it; the watcher
# deletes those older than REVSEARCH_TASK_RESULT_DAYS (so would `celery beat`'s backend_cleanup).
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = env_int("REVSEARCH_TASK_RESULT_DAYS", 7, minimum=1) * 24 * 3600
# A task is acknowledged only when done, so a worker that dies mid-task hands it to another.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task a dead worker had taken goes to another after this long. It must exceed the longest task: a video's slice
# (VIDEO_SLICE_SECONDS) plus one chunk, and the longest retry wait (RETRY_BACKOFF_MAX_SECONDS).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("REVSEARCH_TASK_TIMEOUT", 900, minimum=60)}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# While Milvus is down an asset is `retrying`: RETRY_LIMIT more tries, waits doubling from RETRY_BACKOFF_SECONDS
# up to five minutes; then it is `failed`, and `manage.py reindex --failed` recovers it.
RETRY_LIMIT = env_int("REVSEARCH_RETRY_LIMIT", 8, minimum=0)
RETRY_BACKOFF_SECONDS = env_float("REVSEARCH_RETRY_BACKOFF_SECONDS", 5.0, above=0)
RETRY_BACKOFF_MAX_SECONDS = 300.0
CELERY_TASK_ALWAYS_EAGER = env_bool("REVSEARCH_TASKS_EAGER", False)

# --- Logging: one line per event ---------------------------------------------------------------------
LOG_LEVEL = env_str("REVSEARCH_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {
            "()": "revsearch_site.log_format.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
