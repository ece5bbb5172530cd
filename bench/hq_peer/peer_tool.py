"""Seeds the peer's database like the service's inbox and hands out logged-in sessions.

peer_tool.py seed ROWS USERS     migrate, then USERS users with ROWS notifications, one in 7 unread
peer_tool.py sessions N          N session cookies of random users, as JSON
"""

import json
import os
import random
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")

import django

django.setup()

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection


def seed(rows: int, users: int) -> None:
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                   is_active, date_joined)
            SELECT '!', false, 'inbox-' || g, '', '', '', false, true, now() FROM generate_series(0, %s - 1) AS g
            """,
            [users],
        )
        actor_type = ContentType.objects.get_for_model(User).id
        # The same shape as the service's bench rows: user g %% USERS, unread when (g / USERS) %% 7 = 0.
        cursor.execute(
            """
            INSERT INTO notifications_notification (level, recipient_id, unread, actor_content_type_id,
                actor_object_id, verb, description, timestamp, public, deleted, emailed)
            SELECT 'info', u.id, (g / %s) %% 7 = 0, %s, u.id::text, 'Notice ' || g, 'Body',
                   now() - ((%s - g) || ' seconds')::interval, true, false, false
            FROM generate_series(1, %s) AS g
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM auth_user) AS u ON u.n = g %% %s
            """,
            [users, actor_type, rows, rows, users],
        )
        cursor.execute("VACUUM ANALYZE notifications_notification")


def sessions(count: int) -> list[str]:
    ids = list(User.objects.values_list("id", flat=True))
    keys = []
    for user in User.objects.filter(id__in=random.Random(1).sample(ids, min(count, len(ids)))):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    return keys


if __name__ == "__main__":
    command, *values = sys.argv[1:]
    if command == "seed":
        seed(int(values[0]), int(values[1]))
    else:
        print(json.dumps(sessions(int(values[0]))))
