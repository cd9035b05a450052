# One image for the code server, the webserver, the daemon and every run's container.
FROM python:3.11.10-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/research_assets

# The dependency layer first: a code change does not reinstall torch and Dagster.
# torch comes from the CPU-only index; the default build pulls gigabytes of CUDA libraries.
COPY pyproject.toml README.md ./
RUN mkdir -p research_assets \
 && touch research_assets/__init__.py \
 && pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install . \
 && pip uninstall -y research_assets

COPY research_assets ./research_assets
RUN pip install --no-deps . && mkdir -p $DAGSTER_HOME/storage
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml
