# syntax=docker/dockerfile:1
# Build stage: a wheel of the operator and its dependencies; no build tools reach the final image.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
# jemalloc: the operator runs its heap on it (INFOP_ALLOCATOR=auto, operator/.../heap.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2=5.3.0-1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin operator
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 INFOP_LOG_FORMAT=json
USER 65532:65532
# Liveness and readiness come from Kubernetes probes on the kopf health port (8081); no HEALTHCHECK.
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "inference_operator"]
CMD ["run"]
