# certmint's operator image: `certmint run` as user 65532, fit for a read-only root filesystem.
#
# Build: docker build -t certmint/certmint:0.1.0 .
# Both stages use the same base, pinned to an exact Python patch release, so the virtual
# environment built in the first stage runs unchanged in the second.

FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt requirements/
COPY operator/ operator/

# The runtime dependencies exactly as locked (versions and hashes, nothing resolved), then
# certmint itself. pip byte-compiles on install, so nothing is written at run time.
RUN python -m venv /opt/certmint \
    && /opt/certmint/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt \
    && /opt/certmint/bin/pip install --no-deps . \
    && /opt/certmint/bin/certmint --help >/dev/null


FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="certmint" \
      org.opencontainers.image.description="Kubernetes operator issuing workload certificates with SPIFFE identity and authorization claims" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/certmint/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=builder /opt/certmint /opt/certmint

# 65532: the conventional "nonroot" user; the Deployment runs as the same numeric ids.
USER 65532:65532
EXPOSE 9403

ENTRYPOINT ["certmint", "run"]
CMD ["-A"]
