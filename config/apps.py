from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """`config` as an app only so that every process (web, worker, beat, manage.py, tests) wires the
    metrics signals once Django is set up: query timing on each connection, Celery task metrics."""

    name = "config"
    label = "project"
    verbose_name = "Project"

    def ready(self) -> None:
        from config import metrics, task_metrics  # noqa: F401 (importing connects their signals)
