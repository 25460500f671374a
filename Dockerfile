# One chatd node. docker-compose.yml runs two of them behind nginx, on PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY chatd ./chatd
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data chatd \
    && mkdir -p /data /files \
    && chown chatd /data /files

USER chatd
WORKDIR /data
EXPOSE 8000

# Ready once the store is open (docs/protocol.md, "Running").
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

ENTRYPOINT ["chatd"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
