# One image for the code server, the webserver and the daemon.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/research_assets

# Dependency layer first, so a code change does not reinstall torch and Dagster.
COPY pyproject.toml README.md ./
RUN mkdir -p research_assets && touch research_assets/__init__.py \
 && pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install . \
 && pip uninstall -y research_assets

COPY research_assets ./research_assets
COPY workspace.yaml ./
RUN pip install --no-deps . && mkdir -p $DAGSTER_HOME
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml
