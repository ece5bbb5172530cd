"""The ASGI entry point (uvicorn): every endpoint, and the inbox's Server-Sent Events stream,
which holds a connection open per reader and so needs an asynchronous server."""

import os
import warnings

from django.core.asgi import get_asgi_application

# WhiteNoise serves static files as a file iterator, which Django reads in a thread under ASGI
# (and says so on each file). Correct, and not worth a line in the log per file.
warnings.filterwarnings("ignore", "StreamingHttpResponse must consume synchronous iterators")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authms.settings")
application = get_asgi_application()
