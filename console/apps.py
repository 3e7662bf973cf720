from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The status pages for responders (/status/): server-rendered, signed in with a Django session.

    It reads the record (incidents) and the engine (orchestrator) and calls their services; neither
    of them knows it exists."""

    name = "console"
    verbose_name = "Status pages"

    def ready(self) -> None:
        from django.contrib import admin

        # The admin's "View site" link leads to the status page instead of a JSON 404 at /.
        admin.site.site_url = "/status/"
