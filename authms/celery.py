"""The Celery app. Worker: `celery -A authms worker -l info`; beat: `celery -A authms beat -l info`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authms.settings")

app = Celery("authms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
