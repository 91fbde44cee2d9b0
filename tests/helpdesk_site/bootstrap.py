"""Set up a fresh helpdesk: migrate, an API superuser with a token, a support and a human queue.

Run as `python -m tests.helpdesk_site.bootstrap` with DJANGO_SETTINGS_MODULE and HELPDESK_SITE_DB
set; prints {"token": ..., "queue": id, "human_queue": id} as JSON on stdout.
"""

import io
import json
import secrets

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    call_command("migrate", verbosity=0, stdout=io.StringIO())
    from django.contrib.auth import get_user_model
    from helpdesk.models import Queue
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_superuser("deskgate", "deskgate@example.com", secrets.token_urlsafe(24))
    token = Token.objects.create(user=user)
    support = Queue.objects.create(title="Support", slug="support")
    humans = Queue.objects.create(title="Humans", slug="humans")
    print(json.dumps({"token": token.key, "queue": support.id, "human_queue": humans.id}))


if __name__ == "__main__":
    main()
