# syntax=docker/dockerfile:1.7
#
# msk-cds images: one Dockerfile, two final targets (docs/operations.md, "Images").
#
#   docker build --target api    -t msk-cds-api:0.1.0    .   # CPU: CDS Hooks API (FastAPI + uvicorn)
#   docker build --target worker -t msk-cds-worker:0.1.0 .   # GPU: segmentation + measurement workers
#
# Why two images: the API answers hooks from stored results and computes risk from JSON models; it never
# segments, so it carries no torch, torchvision, segment-anything or ONNX Runtime (about 5 GB of CUDA
# wheels). Workers segment on the GPU: torch (CUDA 13 build), onnxruntime-gpu and the CUDA 13 / cuDNN 9
# user-space libraries that those wheels pin. tests/deploy/test_dockerfile.py checks that the API's code
# imports without the excluded packages, that every COPY source exists and that the final stages run as a
# non-root user.
#
# Both images share one relocatable CPython (python-build-standalone, installed by uv), so the API and the
# workers run the same interpreter build, whatever their base image ships.

# uv pins the python-build-standalone release it installs, so UV_VERSION also pins the CPython patch level.
ARG UV_VERSION=0.13.9
ARG PYTHON_VERSION=3.11
ARG API_BASE_IMAGE=debian:bookworm-slim
# The NVIDIA CUDA "base" flavour: CUDA runtime (cudart) plus the NVIDIA container-toolkit environment.
# cuBLAS / cuDNN / cuFFT come from the pip wheels that torch and onnxruntime-gpu are built against, so the
# image holds exactly one copy of each, at the versions the frameworks expect. A site that prefers the
# "-runtime-" or "-cudnn-runtime-" flavour can pass it here.
ARG CUDA_BASE_IMAGE=nvidia/cuda:13.0.1-base-ubuntu24.04
# Packages the API image leaves out (all are project dependencies only the segmentation workers use).
ARG API_EXCLUDES="torch torchvision segment-anything onnx onnxscript onnxruntime"
# The worker image swaps the CPU onnxruntime for the `gpu` extra's onnxruntime-gpu (both own the same
# Python package, so they must never be installed together).
ARG WORKER_EXCLUDES="onnxruntime"

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- python: interpreter + empty virtual environment, shared by both build stages ------------------------
FROM debian:bookworm-slim AS python
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
ARG PYTHON_VERSION
RUN uv python install "${PYTHON_VERSION}" \
 && uv venv --python "${PYTHON_VERSION}" /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY cds_hooks ./cds_hooks
COPY schemas ./schemas

# ---- api-build: the project without the segmentation stack -----------------------------------------------
FROM python AS api-build
ARG API_EXCLUDES
RUN printf '%s\n' ${API_EXCLUDES} > /tmp/excludes.txt \
 && uv pip install --python /opt/venv/bin/python --excludes /tmp/excludes.txt . \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'onnxruntime')))"

# ---- worker-build: the project with the gpu extra ---------------------------------------------------------
FROM python AS worker-build
ARG WORKER_EXCLUDES
RUN printf '%s\n' ${WORKER_EXCLUDES} > /tmp/excludes.txt \
 && uv pip install --python /opt/venv/bin/python --excludes /tmp/excludes.txt ".[gpu]"

# ---- api: slim CPU image -----------------------------------------------------------------------------------
FROM ${API_BASE_IMAGE} AS api
# ca-certificates: lets operators trust the hospital's internal CA through the system store (SSL_CERT_FILE).
# Unpinned on purpose: the distribution's security updates should land on every rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mskcds \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/mskcds --create-home --shell /usr/sbin/nologin mskcds \
 && install -d -o 10001 -g 10001 /var/cache/mskcds
COPY --from=api-build /opt/python /opt/python
COPY --from=api-build /opt/venv /opt/venv
COPY models /opt/mskcds/models
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mskcds \
    MPLCONFIGDIR=/tmp/matplotlib \
    MSKCDS_MODEL_DIR=/opt/mskcds/models \
    MSKCDS_CACHE_DIR=/var/cache/mskcds
USER 10001:10001
WORKDIR /home/mskcds
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["mskcds"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# ---- worker: CUDA image for GPU nodes ---------------------------------------------------------------------
FROM ${CUDA_BASE_IMAGE} AS worker
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mskcds \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/mskcds --create-home --shell /usr/sbin/nologin mskcds \
 && install -d -o 10001 -g 10001 /var/cache/mskcds
COPY --from=worker-build /opt/python /opt/python
COPY --from=worker-build /opt/venv /opt/venv
COPY models /opt/mskcds/models
# onnxruntime-gpu finds cuDNN / cuBLAS in the nvidia-* wheels (the same ones torch loads); the base image's
# own entries (driver libraries mounted by the NVIDIA container toolkit) stay on the path.
ENV PATH=/opt/venv/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib:${LD_LIBRARY_PATH} \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mskcds \
    MPLCONFIGDIR=/tmp/matplotlib \
    MSKCDS_MODEL_DIR=/opt/mskcds/models \
    MSKCDS_CACHE_DIR=/var/cache/mskcds \
    MSKCDS_WORKER_METRICS_PORT=9100
USER 10001:10001
WORKDIR /home/mskcds
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=4)"]
ENTRYPOINT ["mskcds"]
CMD ["worker"]
