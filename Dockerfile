# The fitting-room service in a container: `docker build -t fitroom .` then `docker compose up` (compose.yaml).
# CPU build by default; for an NVIDIA GPU build with TORCH_INDEX=https://download.pytorch.org/whl/cu126 and run with
# `--gpus all` (the learned engines then take the GPU: --device auto).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# OpenCV (inside mediapipe's wheel set) needs these shared libraries on a slim image
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --extra-index-url "$TORCH_INDEX" ".[postgres,s3]"

# not root; the data folder (database, photos, results) and the weights cache are one volume
RUN useradd --create-home --uid 1000 fitroom && mkdir -p /data && chown fitroom /data
USER fitroom
ENV FITROOM_DATA_DIR=/data FITROOM_WEIGHTS=/data/weights OMP_NUM_THREADS=2
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
CMD ["fitroom", "serve", "--host", "0.0.0.0", "--port", "8000"]
