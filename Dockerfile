# Interlock's image: the API (`interlock serve`), the workers and the scheduler all run it.
# Checked statically by tests/test_deployment.py (no Docker engine on the project's machines).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INTERLOCK_HOME=/var/lib/interlock

# A regular (non-editable) install: the image holds the built package, not a source tree.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
COPY adapters ./adapters
RUN pip install --no-cache-dir ".[postgres]" && rm -rf /build

# Everything runs as a system user that owns only INTERLOCK_HOME; the code stays root's.
RUN groupadd --system interlock \
    && useradd --system --gid interlock --home-dir /var/lib/interlock --shell /usr/sbin/nologin interlock \
    && mkdir -p /var/lib/interlock \
    && chown interlock:interlock /var/lib/interlock
WORKDIR /var/lib/interlock
USER interlock

EXPOSE 8000
# Liveness only (no I/O); readiness (store and broker) is GET /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["interlock", "serve", "--host", "0.0.0.0", "--port", "8000"]
