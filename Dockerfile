# One image for the code server, the webserver, the daemon and every run's container.
#
# By default it builds from python:3.11-slim and PyPI (torch from PyTorch's CPU-only index):
#   docker compose build
# Where no registry is reachable, from a local Debian base and a wheelhouse of the locked wheels
# (scripts/build_images.sh makes both; nothing is downloaded inside the build):
#   docker build --build-arg BASE_IMAGE=research-assets-base:bookworm \
#                --build-arg WHEELHOUSE=wheelhouse -t research_assets:0.1.0 .
# For a GPU host, a CUDA build of torch: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (or a CUDA torch wheel in the wheelhouse).

# Any Debian-like image with python3.11 and its venv module.
ARG BASE_IMAGE=python:3.11.10-slim-bookworm

# -- the dependencies, in a venv built in a stage of its own (the wheelhouse stays out of the
# final image) --------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS dependencies
# A folder of the build context with a wheel for every locked distribution; empty: PyPI.
ARG WHEELHOUSE=
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Only the lock (and the wheelhouse, when given): a code change does not reinstall torch.
COPY requirements.lock ${WHEELHOUSE:-requirements.lock} /tmp/dependencies/
# The runtime dependencies at exactly the versions in requirements.lock (the dev tools in it are
# left out). torch first, without its dependencies (the locked ones follow): from the CPU-only
# index, as the default build pulls gigabytes of CUDA libraries.
RUN set -eu; \
    python3 -m venv /opt/venv; \
    pip=/opt/venv/bin/pip; lock=/tmp/dependencies/requirements.lock; \
    if [ -n "$WHEELHOUSE" ]; then \
      set -- --no-index --find-links /tmp/dependencies; torch_index="$*"; \
    else \
      set --; torch_index="--index-url $TORCH_INDEX_URL"; \
    fi; \
    $pip install "$@" "$(grep -E '^pip==' $lock)"; \
    $pip install --no-deps $torch_index "$(grep -E '^torch==' $lock)"; \
    $pip install "$@" -c $lock setuptools; \
    mkdir -p /tmp/project/research_assets; touch /tmp/project/research_assets/__init__.py; \
    touch /tmp/project/README.md
# pyproject.toml only: an edit of the README does not reinstall every dependency.
COPY pyproject.toml /tmp/project/
RUN set -eu; \
    pip=/opt/venv/bin/pip; \
    if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links /tmp/dependencies; else set --; fi; \
    $pip install "$@" -c /tmp/dependencies/requirements.lock --no-build-isolation /tmp/project; \
    $pip uninstall -y research_assets

# -- the image --------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home PATH=/opt/venv/bin:$PATH
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /opt/research_assets
COPY pyproject.toml README.md ./
COPY research_assets ./research_assets
RUN pip install --no-deps --no-build-isolation . && mkdir -p $DAGSTER_HOME/storage
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml
