# One chatd node. docker-compose.yml runs two of them behind nginx, on PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The dependencies first, at the lock's exact versions (chatd[postgres,redis]: the lock is
# written for this image by tools/lock_constraints.py), in a layer of their own: it is
# rebuilt when constraints.txt changes, not on every change to the source.
COPY constraints.txt ./
RUN pip install --requirement constraints.txt

COPY pyproject.toml README.md LICENSE ./
COPY protocol ./protocol
COPY chatd ./chatd
# chatd alone: its dependencies are all in the layer above, and `pip check` fails the build
# if the lock ever misses one.
RUN pip install . --no-deps \
    && pip check \
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
