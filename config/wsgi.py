"""The WSGI application: Django, behind the alert fast lane (incidents/fast_lane.py), which answers
duplicate alerts of a storm itself and hands everything else to Django unchanged."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from incidents.fast_lane import AlertFastLane  # noqa: E402 (needs the apps loaded above)

application = AlertFastLane(django_application)
