"""The ASGI entry point (uvicorn): every endpoint, and the inbox's Server-Sent Events stream,
which holds a connection open per reader and so needs an asynchronous server."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authms.settings")
application = get_asgi_application()
