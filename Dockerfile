# syntax=docker/dockerfile:1
#
# One image runs every Pathways process; the first argument says which:
#
#   docker build -t pathways:0.1.0 .
#   docker run --env-file ... pathways:0.1.0 gateway      # or referrals, casework,
#   docker run --env-file ... pathways:0.1.0 migrate      #    outcomes, reporting
#
# Configuration and secrets come from environment variables at run time only
# (docs/deploy.md); nothing secret is copied into or set in the image.
#
# The base is pinned to an exact Python patch release and Debian release. To pin the
# digest too (recommended for production builds), pass it in:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a virtualenv with exactly the locked wheels, and the byte-compiled source ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# --require-hashes: only the files the lock names; --only-binary: every locked package
# has a manylinux wheel, so the slim base needs no compiler.
RUN /opt/venv/bin/pip install --no-deps --require-hashes --only-binary=:all: \
        -r /tmp/requirements.lock
COPY shared/ /app/shared/
COPY services/ /app/services/
COPY pathways/ /app/pathways/
# Compile now: the runtime filesystem is read-only, so no .pyc could be written there.
RUN /opt/venv/bin/python -m compileall -q /app /opt/venv/lib

# --- runtime: the same base, no build tools, an unprivileged user ---------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pathways \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin pathways
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/pathways-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving names.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["pathways-entrypoint"]
CMD ["gateway"]
