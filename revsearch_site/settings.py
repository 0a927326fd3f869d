"""RevSearch settings: every value comes from the environment, with defaults for one laptop."""

import importlib.util
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from media_index import face_models
from revsearch_site.env import env_bool, env_choice, env_float, env_int, env_path, env_str
from revsearch_site.private_files import make_private, private_file, private_secret

BASE_DIR = Path(__file__).resolve().parent.parent


# --- Where things live -------------------------------------------------------------------------------
HOME_DIR = env_path("REVSEARCH_HOME", BASE_DIR / "var")
INBOX_DIR = env_path("REVSEARCH_INBOX", HOME_DIR / "inbox")
MEDIA_ROOT = HOME_DIR / "media"
QUERY_DIR = HOME_DIR / "queries"
LOG_DIR = HOME_DIR / "logs"
MILVUS_LITE_DIR = HOME_DIR / "milvus"
# Test and measurement data (LFW, example videos), read in place; the service never needs it to run.
DATA_DIR = env_path("REVSEARCH_DATA_DIR", BASE_DIR.parent / "shared" / "data")

# --- Ports and services: the embedded defaults sit next to the web port, so two homes with two ports
# run side by side without clashing.
PORT = env_int("REVSEARCH_PORT", 8000, minimum=1)
BIND_ADDRESS = env_str("REVSEARCH_BIND", "127.0.0.1")
WORKER_CONCURRENCY = env_int("REVSEARCH_WORKERS", os.cpu_count() or 1, minimum=1)
REDIS_EMBEDDED = not os.environ.get("REDIS_URL", "").strip()
# The embedded Redis asks for a password made once into the home: every local user can reach a loopback port, and
# whoever gets into Redis can forge or drop tasks, and with CONFIG SET write files wherever the service's user can.
REDIS_PASSWORD = private_secret(HOME_DIR / "redis_password") if REDIS_EMBEDDED else ""
REDIS_URL = env_str("REDIS_URL", f"redis://:{REDIS_PASSWORD}@127.0.0.1:{PORT + 1}/0")
MILVUS_EMBEDDED = not os.environ.get("MILVUS_URI", "").strip()
MILVUS_URI = env_str("MILVUS_URI", f"http://127.0.0.1:{PORT + 2}")
MILVUS_TOKEN = env_str("MILVUS_TOKEN", "")
# Strong: a search sees every face stored before it, and waits for that on a Milvus server (docs/performance.md).
# Bounded: answers at once, and may miss faces stored in the last few seconds. Milvus Lite answers at once either way.
MILVUS_SEARCH_CONSISTENCY = env_choice(
    "REVSEARCH_SEARCH_CONSISTENCY", "Strong", ("Strong", "Bounded", "Session", "Eventually")
)

# --- Faces -----------------------------------------------------------------------------------------
FACE_MODEL = env_choice("REVSEARCH_FACE_MODEL", face_models.DEFAULT, tuple(face_models.FACE_MODELS))
# One collection per face model: embeddings of different models are never compared, and their sizes differ.
MILVUS_COLLECTION = env_str("MILVUS_COLLECTION", "faces_" + FACE_MODEL.replace("-", "_"))
TORCH_HOME = env_path("TORCH_HOME", Path("~/.cache/torch").expanduser())
TORCH_THREADS = env_int("REVSEARCH_TORCH_THREADS", 1, minimum=1)
# FaceNet's precision. auto: bfloat16 where the processor has AMX-BF16 or AVX512-BF16, float32 elsewhere; MTCNN stays
# float32 (docs/performance.md, "Reduced precision").
FACE_PRECISION = env_choice("REVSEARCH_FACE_PRECISION", "auto", ("auto", "float32", "bfloat16"))
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
# Videos whose frames are above this many pixels are refused when probed, before a decoder allocates one (8K is 35
# million); ffmpeg's decoder is held to it too, should a stream grow its frames later on.
MAX_VIDEO_PIXELS = env_int("REVSEARCH_MAX_VIDEO_PIXELS", 40_000_000, minimum=1)
# For a face model with no calibration (see media_index/calibration.py): the L2 distance below which two faces
# are called the same person, and where the 0-100 score is 50.
MATCH_DISTANCE = env_float("REVSEARCH_MATCH_DISTANCE", 1.0)
# People (docs/people.md): a new person needs this many mutually close faces, and faces are close within this
# distance; 0 takes the face model's identification threshold (media_index/calibration.py). `evaluate clusters`
# chose 2 and 1.0 (FaceNet distances): pairs are most of LFW's people, and grouping.group's stable groups keep
# their precision up to 1.0 and beyond, where the identification threshold (0.88) leaves recall below the target
# (a rule that joins a face on one close link needs the identification threshold instead). Off, new faces wait
# for `manage.py cluster_faces --full`.
PEOPLE_MIN_FACES = env_int("REVSEARCH_PEOPLE_MIN_FACES", 2, minimum=1)
PEOPLE_CLUSTER_DISTANCE = env_float("REVSEARCH_PEOPLE_CLUSTER_DISTANCE", 1.0)
PEOPLE_ASSIGN_ON_INDEX = env_bool("REVSEARCH_PEOPLE_ASSIGN_ON_INDEX", True)
# The full rebuild runs by itself once the queue is idle and this many faces came since the last one (0: only by
# `manage.py cluster_faces --full`). Its time limit is below, under the queue's visibility timeout.
PEOPLE_REGROUP_AFTER_FACES = env_int("REVSEARCH_PEOPLE_REGROUP_AFTER_FACES", 200)
# Photos that arrive together are sent this many to a task, their faces detected (same-size photos at once) and
# embedded together, each photo still claimed and stored on its own (media_index/photo_batch.py); 1: a task each.
PHOTO_BATCH = env_int("REVSEARCH_PHOTO_BATCH", 8, minimum=1)
# Videos: frames sampled per second of video, frames embedded per batch and stored per transaction, and how long
# one task works on a video before a new task carries on (so long videos never hold a worker for hours).
VIDEO_SAMPLE_FPS = env_float("REVSEARCH_VIDEO_SAMPLE_FPS", 1.0, above=0)
VIDEO_CHUNK_FRAMES = env_int("REVSEARCH_VIDEO_CHUNK_FRAMES", 8, minimum=1)
VIDEO_SLICE_SECONDS = env_int("REVSEARCH_VIDEO_SLICE_SECONDS", 300, minimum=1)
# A video at least twice this long (seconds of video) is split into stretches of about this length, indexed by all
# workers at once and then joined (media_index/stretches.py); 0 indexes every video in one piece.
VIDEO_STRETCH_SECONDS = env_int("REVSEARCH_VIDEO_STRETCH_SECONDS", 60, minimum=0)
# ffmpeg decodes no non-reference frame (most B-frames): a sampled frame may be one frame later, for less decoding
# (media_index/video_decode.py).
VIDEO_FAST_DECODE = env_bool("REVSEARCH_VIDEO_FAST_DECODE", False)
# A moment's edges (a track's start and end) between sampled frames are refined by decoding the stretch between them
# (media_index/spans.py); off, an edge not at a shot cut is put halfway between the two sampled frames.
VIDEO_REFINE_EDGES = env_bool("REVSEARCH_VIDEO_REFINE_EDGES", True)
# Sampled frames whose longest side is above this many pixels are scaled down inside ffmpeg, so that a 4K or 8K video
# costs the worker no more memory than a 1080p one.
VIDEO_FRAME_MAX_SIDE = env_int("REVSEARCH_VIDEO_FRAME_MAX_SIDE", 1920, minimum=160)
# ffprobe must answer, and ffmpeg deliver each sampled frame, within this many seconds; else it is stopped and the
# video fails as stalled.
VIDEO_STALL_SECONDS = env_int("REVSEARCH_VIDEO_STALL_SECONDS", 60, minimum=1)
SEARCH_TOP_K = env_int("REVSEARCH_SEARCH_TOP_K", 20, minimum=1)
MAX_UPLOAD_BYTES = env_int("REVSEARCH_MAX_UPLOAD_MB", 25, minimum=1) * 1024 * 1024
# A request body longer than the upload plus room for the form's other fields is refused (413) before it is read.
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
# Files uploaded into the inbox through the API (POST /api/v1/assets) may be this large: videos are far larger than
# query photos, and are written to a temporary file, never held in memory.
MAX_ASSET_UPLOAD_BYTES = env_int("REVSEARCH_MAX_ASSET_UPLOAD_MB", 2048, minimum=1) * 1024 * 1024
# Requests per API token: a count and a period (s, m, h or d); counted in Redis, shared by every web process.
API_RATE = env_str("REVSEARCH_API_RATE", "600/m")
API_THROTTLE_CACHE = "api"
# Query photos are decoded in the web server while someone waits: a lower pixel limit than the inbox's, checked on
# the header, and at most this many faces embedded (the largest; a crowd photo holds far more than anyone picks).
MAX_QUERY_PIXELS = env_int("REVSEARCH_MAX_QUERY_PIXELS", 40_000_000, minimum=1)
QUERY_MAX_FACES = env_int("REVSEARCH_QUERY_MAX_FACES", 30, minimum=1)
# A progressive JPEG is decoded once per scan: encoders write about 10, a crafted file thousands (minutes of CPU
# for one photo). Photos and queries with more scans are refused before decoding.
MAX_JPEG_SCANS = env_int("REVSEARCH_MAX_JPEG_SCANS", 100, minimum=1)

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
    return private_secret(HOME_DIR / "secret_key")


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
    "axes",
    "media_index",
    "search",
    "people",
    "ninja",  # its static files: the API's docs page loads nothing from elsewhere
    "api",
]
# The measurement tools are not in the production image: the app is there only where its package is.
if importlib.util.find_spec("benchmarks"):
    INSTALLED_APPS.append("benchmarks")

MIDDLEWARE = [
    # First: an oversized body is refused before any other middleware (the login redirect, CSRF) could read it.
    "revsearch_site.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "revsearch_site.urls"
WSGI_APPLICATION = "revsearch_site.wsgi.application"
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/"
# Sign-in attempts are throttled by django-axes: after LOGIN_FAILURE_LIMIT failures for one username from one address,
# that pair is refused (429) for LOGIN_LOCKOUT_MINUTES; a success clears the count. `manage.py axes_reset` (or deleting
# the Access attempts in the admin) unlocks at once. Behind the proxy the address comes from X-Forwarded-For.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("REVSEARCH_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("REVSEARCH_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "revsearch_site.signin.client_ip"
AXES_COOLOFF_MESSAGE = (
    f"Too many failed sign-ins for this username from your address: try again in {LOGIN_LOCKOUT_MINUTES} minutes."
)
AXES_VERBOSE = False  # no banner from every process at start; lockouts and failures are still logged
# /healthz runs its checks at most once per this many seconds in each process, however many ask.
HEALTH_CACHE_SECONDS = env_int("REVSEARCH_HEALTH_CACHE_SECONDS", 5, minimum=0)

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
_private_files = [HOME_DIR / "secret_key", HOME_DIR / "redis_password"]
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and str(DATABASES["default"]["NAME"]) not in ("", ":memory:"):
    # Made empty and private before SQLite first opens it (it would make it 0644; an empty file is an empty
    # database). SQLite gives its -wal and -shm files the database's mode.
    _database = Path(DATABASES["default"]["NAME"])
    private_file(_database)
    _private_files += [_database.with_name(_database.name + suffix) for suffix in ("", "-wal", "-shm")]
make_private(HOME_DIR, _private_files)
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

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    API_THROTTLE_CACHE: {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "revsearch",
        "TIMEOUT": 3600,
        "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    },
}

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
# Time limits, sized from the longest task: a video's slice (VIDEO_SLICE_SECONDS), plus room for its last chunk, the
# probe and the store. Past the soft limit the task fails its asset with the reason. Past the hard limit the pool
# process is killed and, with acks on timeout off, the message goes back to the queue (Celery 5.7 would otherwise
# acknowledge it and leave the asset `processing`): its next delivery counts a worker death.
CELERY_TASK_SOFT_TIME_LIMIT = VIDEO_SLICE_SECONDS + env_int("REVSEARCH_TASK_TIME_MARGIN", 120, minimum=10)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
CELERY_TASK_ACKS_ON_TIMEOUT = False
# A file whose indexing kills the pool process (out of memory, a crash, the hard time limit) is tried this many
# times, counted on the asset, then failed; the queue goes on.
WORKER_DEATH_LIMIT = env_int("REVSEARCH_WORKER_DEATH_LIMIT", 3, minimum=1)
# A pool process holding more than this many MB after a task is replaced by a fresh one (0: never), so that memory
# a large file left behind is given back.
WORKER_MAX_MEMORY_MB = env_int("REVSEARCH_WORKER_MAX_MEMORY_MB", 2048, minimum=0)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = WORKER_MAX_MEMORY_MB * 1024 or None  # KiB
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The tasks import their work when they run (media_index/tasks.py says why); the worker imports it once at start,
# before it forks its pool, so that pool processes inherit torch and the pipeline rather than each importing them.
CELERY_IMPORTS = ("media_index.indexing", "media_index.photo_batch", "people.rebuild")
# While Milvus is down an asset is `retrying`: RETRY_LIMIT more tries, waits doubling from RETRY_BACKOFF_SECONDS
# up to five minutes; then it is `failed`, and `manage.py reindex --failed` recovers it.
RETRY_LIMIT = env_int("REVSEARCH_RETRY_LIMIT", 8, minimum=0)
RETRY_BACKOFF_SECONDS = env_float("REVSEARCH_RETRY_BACKOFF_SECONDS", 5.0, above=0)
RETRY_BACKOFF_MAX_SECONDS = 300.0
# A task a dead worker had taken goes to another after this long. It must exceed the longest a task holds its
# message: the hard time limit, and the longest retry wait; else a running task would be handed out twice.
TASK_VISIBILITY_TIMEOUT = env_int("REVSEARCH_TASK_TIMEOUT", max(900, CELERY_TASK_TIME_LIMIT + 60), minimum=60)
# The regroup task (people/tasks.py) ends before the queue would hand it to another worker (100,000 faces took
# minutes: docs/people.md).
PEOPLE_REGROUP_TIME_LIMIT = TASK_VISIBILITY_TIMEOUT * 9 // 10
if max(CELERY_TASK_TIME_LIMIT, RETRY_BACKOFF_MAX_SECONDS) >= TASK_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        f"REVSEARCH_TASK_TIMEOUT={TASK_VISIBILITY_TIMEOUT}: must be more than the task time limit"
        f" ({CELERY_TASK_TIME_LIMIT:.0f} s, from REVSEARCH_VIDEO_SLICE_SECONDS and REVSEARCH_TASK_TIME_MARGIN)"
        f" and the longest retry wait ({RETRY_BACKOFF_MAX_SECONDS:.0f} s)"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": TASK_VISIBILITY_TIMEOUT}
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
