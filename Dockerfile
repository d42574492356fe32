# syntax=docker/dockerfile:1
# voice-gateway: a build stage installs the locked dependencies with uv; the runtime stage is a
# slim Python with that virtualenv and nothing else (no uv, no compiler, no curl), run as a
# non-root user. Build: docker build -t voice-gateway .   Run: see compose.yaml and README.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The same uv as the Makefile pins, from PyPI.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir --root-user-action=ignore "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, from the committed lock only: this layer is reused until uv.lock changes.
# --locked: exactly the lock is installed, and a lock that no longer matches pyproject.toml fails
# the build instead of being installed. --no-default-groups: no dev or e2e group, only what the
# gateway runs on.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-install-project
# Then the gateway itself, installed into the venv as a package (not an editable link to /src).
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin gateway
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only (the process serves): an outage of LiveKit is no reason to restart the gateway.
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-m", "voice_gateway.probe", "http://127.0.0.1:8000/healthz"]
# Exec form: the gateway is PID 1 and receives SIGTERM itself, then drains (see docs/operations.md).
# One uvicorn worker per container; scale with replicas.
STOPSIGNAL SIGTERM
ENTRYPOINT ["voice-gateway"]
CMD ["serve"]
