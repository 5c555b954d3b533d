# The advocate sync service: `sync-service serve` runs the scheduled jobs, the Ask API, health
# and metrics. In a container it listens on every interface (SYNC_HTTP_HOST=0.0.0.0).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNC_CONFIG=/app/config/settings.yaml \
    SYNC_HTTP_HOST=0.0.0.0 \
    SYNC_HTTP_PORT=8080

WORKDIR /app
RUN groupadd --system app && useradd --system --gid app --home-dir /app app

COPY pyproject.toml README.md ./
COPY canonical ./canonical
COPY connectors ./connectors
COPY rules ./rules
COPY sync_service ./sync_service
RUN pip install --no-cache-dir . && mkdir -p /app/var && chown -R app:app /app/var

# Admin-edited YAML: mount your own over these.
COPY config ./config
COPY mappings ./mappings
VOLUME ["/app/config", "/app/mappings", "/app/var"]

USER app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SYNC_HTTP_PORT','8080'), timeout=4)"

CMD ["sync-service", "serve"]
