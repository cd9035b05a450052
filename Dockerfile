# One image for the code server, the webserver, the daemon and every run's container.
FROM python:3.11.10-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/research_assets

# The dependency layer first: a code change does not reinstall torch and Dagster.
# The runtime dependencies at exactly the versions in requirements.lock (used as constraints, so
# the dev extra stays out of the image). torch comes from the CPU-only index first, without its
# dependencies (the locked ones follow); the default build pulls gigabytes of CUDA libraries.
COPY requirements.lock pyproject.toml README.md ./
RUN pip install "$(grep -E '^pip==' requirements.lock)" \
 && pip install --no-deps --index-url https://download.pytorch.org/whl/cpu "$(grep -E '^torch==' requirements.lock)" \
 && pip install -c requirements.lock setuptools \
 && mkdir -p research_assets && touch research_assets/__init__.py \
 && pip install -c requirements.lock --no-build-isolation . \
 && pip uninstall -y research_assets

COPY research_assets ./research_assets
RUN pip install --no-deps --no-build-isolation . && mkdir -p $DAGSTER_HOME/storage
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml
