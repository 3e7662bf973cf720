"""gunicorn settings the Procfile, the Dockerfile and compose share (`-c config/gunicorn.conf.py`).

Metrics: every gunicorn worker counts into PROMETHEUS_MULTIPROC_DIR (config/prometheus.py). The master
removes the files of processes that are gone when it starts, and marks each worker that exits.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

wsgi_app = "config.wsgi"
accesslog = "-"
logger_class = "config.gunicorn_logging.MaskingLogger"
graceful_timeout = 10


def on_starting(server) -> None:
    from config.prometheus import remove_files_of_dead_processes

    remove_files_of_dead_processes()


def child_exit(server, worker) -> None:
    from config.prometheus import mark_process_dead

    mark_process_dead(worker.pid)
