# syntax=docker/dockerfile:1
# One image for every Postroom process: `postroom api` (the default command), `postroom
# worker`, `postroom migrate` and the admin commands. See docs/deploy.md.

# Build: wheels of the pinned runtime dependencies and of Postroom itself.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.lock ./
RUN pip wheel --wheel-dir /wheels -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

# Run: the wheels installed (exactly the pinned versions, nothing from the network), no
# compiler, no build files, a user without privileges.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 postroom \
 && useradd --system --uid 10001 --gid postroom --home-dir /srv/postroom --create-home \
      --shell /usr/sbin/nologin postroom
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /tmp/requirements.lock \
 && pip install --no-index --no-deps /wheels/postroom-*.whl \
 && rm /tmp/requirements.lock
# The settings' relative defaults (var/postroom.db, var/blobs, var/outbox, var/secret.key)
# land in /srv/postroom/var: a volume, writable by the postroom user.
WORKDIR /srv/postroom
RUN install -d -o postroom -g postroom /srv/postroom/var
VOLUME ["/srv/postroom/var"]
USER 10001:10001
EXPOSE 8025
# Liveness of the API (the default command); slim has no curl. A worker container checks
# its metrics port instead (compose.yaml), orchestrators bring their own probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8025/healthz', timeout=2)"]
ENTRYPOINT ["postroom"]
CMD ["api", "--host", "0.0.0.0"]
