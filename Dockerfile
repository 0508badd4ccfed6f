# syntax=docker/dockerfile:1
# One recipe, two images: `--target api` (the model service) and `--target app` (the page).
# Both install the serving lock (requirements/serve.txt), without the `train` extra: serving
# needs no torch.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the package and its dependencies in a virtual environment ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The serving dependencies first, exactly as locked (versions and hashes): this layer is
# rebuilt only when the lock changes, not on every change to the code.
COPY requirements/serve.txt ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/serve.txt
# Then the package alone. Only what the wheel is built from; tests, notebooks and training
# data stay out.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps .

# --- runtime: the environment, a non-root user, a data folder for the outbox ---------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DIGITREC_DATA_DIR=/data
RUN groupadd --system --gid 10001 digitrec \
    && useradd --system --uid 10001 --gid digitrec --create-home --home-dir /home/digitrec \
       --shell /usr/sbin/nologin digitrec \
    && install -d -o digitrec -g digitrec /data
COPY --from=build /opt/venv /opt/venv
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/digitrec

# --- api: gunicorn over uvicorn workers (one per core), metrics summed over them ----------
FROM runtime AS api
ENV WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/digitrec-metrics
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# exec: the server replaces the shell as PID 1, so SIGTERM reaches it directly.
CMD ["sh", "-c", "exec digitrec serve --host 0.0.0.0 --port 8000 --workers \"$WEB_CONCURRENCY\""]

# --- app: the Streamlit page, talking to the api through DIGITREC_API_URL ------------------
FROM runtime AS app
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2)"]
CMD ["digitrec", "app", "--host", "0.0.0.0", "--port", "8501"]
