"""Set up a helpdesk on the SQLite file named by HELPDESK_SITE_DB (DJANGO_SETTINGS_MODULE set too).

`python -m tests.helpdesk_site.bootstrap migrate` only migrates: that file is the template a test session
copies (tests/backends/systems.py keeps it, keyed by the installed versions). Without an argument, on a
migrated copy: an API superuser with a token, a support and a human queue, printed as
{"token": ..., "queue": id, "human_queue": id} on stdout.
"""

import io
import json
import secrets
import sys

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    if sys.argv[1:] == ["migrate"]:
        call_command("migrate", verbosity=0, stdout=io.StringIO())
        return
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
