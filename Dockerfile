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
# Script and robot nodes run as `jobs` (INTERLOCK_RUN_AS, docs/deploy.md): a user with a
# group and a home of its own, which may search INTERLOCK_HOME (0711) but not list it.
# `interlock` joins the `jobs` group: attempt folders are 0710 with the job's group, and
# the API (as `interlock`) reads the logs in them.
RUN groupadd --system interlock \
    && useradd --system --gid interlock --home-dir /var/lib/interlock --shell /usr/sbin/nologin interlock \
    && useradd --system --user-group --create-home --home-dir /home/jobs --shell /usr/sbin/nologin jobs \
    && usermod --append --groups jobs interlock \
    && mkdir -p /var/lib/interlock \
    && chown interlock:interlock /var/lib/interlock \
    && chmod 0711 /var/lib/interlock
WORKDIR /var/lib/interlock
USER interlock

EXPOSE 8000
# Liveness only (no I/O); readiness (store and broker) is GET /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["interlock", "serve", "--host", "0.0.0.0", "--port", "8000"]
