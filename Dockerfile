# Production image: the same code runs web (Granian, config/web.py), worker, beat and flower; compose picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN useradd --create-home --uid 10001 oncall
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings; the real SECRET_KEY and REDIS_URL come at run time.
RUN DEBUG=false SECRET_KEY=build-only REDIS_URL=redis://unused:6379/0 python manage.py collectstatic --noinput \
    && mkdir -p /app/var/prometheus && chown -R oncall /app/var

USER oncall
EXPOSE 8000
# config/web.py: Granian serving the app, the masking access log, and the metrics files' bookkeeping.
CMD ["python", "-m", "config.web", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
