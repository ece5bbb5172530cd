"""django-notifications-hq as a project would install it (its app, sessions, auth), for the
inbox benchmark. Run from this folder with .venv-bench-hq: `notifications` here is hq's package,
not the service's app of the same name (which is why the peer is a process of its own)."""

import os
from urllib.parse import urlsplit

SECRET_KEY = "bench-peer-only-secret-key-with-enough-length"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "notifications",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "peer_urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
_url = urlsplit(os.environ["PEER_DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "",
        "PORT": _url.port or "",
        "CONN_MAX_AGE": 60,  # as the service's
    }
}
