# syntax=docker/dockerfile:1
# The backend image: the `videoconf` wheel installed into a virtualenv, on a slim Python.
# Build from the repository root:
#   docker build -f devops/docker/backend.dockerfile -t videoconf-backend:0.1.0 .
# Base images are pinned by tag; pin them by digest too where you can resolve one
# (docker buildx imagetools inspect python:3.11.14-slim-bookworm).
# No secret is baked in: JWT_SECRET, AUTH0_*, ALLOWED_ORIGINS come from the environment.

# Stage 1: build the wheel and install it, with its pinned dependencies, into /opt/venv.
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY backend/pyproject.toml ./
COPY backend/src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/videoconf-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/videoconf --help >/dev/null

# Stage 2: the runtime. Only the interpreter and the installed package; no compiler, no
# build tools, no pip, no source tree. Runs as an unprivileged numeric user.
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="videoconf-backend" \
      org.opencontainers.image.description="Signaling backend of the videoconf WebRTC platform" \
      org.opencontainers.image.source="https://github.com/RoseWrightdev/Video-Conferencing"
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    PORT=8080
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=2)"]
ENTRYPOINT ["videoconf"]
CMD ["serve"]
