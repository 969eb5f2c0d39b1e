# syntax=docker/dockerfile:1
# Two targets from one file:
#   service  - the API image: numpy + FastAPI + registry, no PyMC/PyTensor, non-root.
#   train    - adds PyMC/ArviZ and OpenBLAS to fit models (compose profile "train", the
#              Kubernetes training Job), with a warm PyTensor cache to seed pods from.
# Settings come from SURROGATE_* environment variables at run time (nothing secret is
# baked into the image).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 surrogate
# The code is copied before the install: an editable install needs the packages present.
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY training ./training
COPY migrations ./migrations

FROM base AS service
# The compiled prediction kernel is cached in the image (filled by the import check and
# `warmup` below): a replica loads it at start instead of compiling for 15-25 s, and the
# read-only container only reads it. It is compiled for the build machine's CPU; on another
# CPU model a replica compiles in memory at start instead (slower start, same answers).
ENV NUMBA_CACHE_DIR=/app/numba-cache
# Editable install keeps migrations/ next to the code, where the schema check finds it.
# Code stays owned by root: the service user can read it but not change it.
RUN pip install -e . \
    && python -c "import sys, service.main; assert 'pymc' not in sys.modules" \
    && mkdir -p /app/var && chown surrogate /app/var
# `warmup` exits non-zero if the kernel could not be cached. The code's bytecode too:
# PYTHONDONTWRITEBYTECODE and the read-only file system would otherwise have every start
# compile the service's modules from source again.
RUN surrogate-serve warmup && python -m compileall -q service training migrations
USER 10001
# 8001: the gRPC Open Inference Protocol, served when SURROGATE_GRPC_PORT=8001 is set.
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 --start-period=10s \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["surrogate-serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS train
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas-dev g++ \
    && rm -rf /var/lib/apt/lists/*
RUN pip install -e '.[train]' && mkdir -p /app/var && chown surrogate /app/var
# A warm PyTensor compile cache: `fit-many --compile-seed /app/pytensor-seed` copies it
# into each pod's own compile directory (deploy/k8s/train-indexed-job.yaml), where a cold
# one would compile for minutes. One small fit of the default method fills it (other
# methods compile their own parts in the pod).
RUN mkdir /tmp/warm && cd /tmp/warm \
    && export SURROGATE_DATABASE_URL=sqlite:////tmp/warm/registry.db \
        PYTENSOR_FLAGS=blas__ldflags=-lopenblas,base_compiledir=/tmp/warm/pytensor,compiledir=/app/pytensor-seed \
    && surrogate-serve migrate \
    && surrogate-train make-data --out group.csv --materials 6 --points 10 \
    && surrogate-train fit group.csv --name warm --members 2 --report report \
    && cd / && rm -rf /tmp/warm /app/pytensor-seed/lock_dir && chmod -R a+rX /app/pytensor-seed
USER 10001
ENTRYPOINT ["surrogate-train"]
CMD ["--help"]
