# syntax=docker/dockerfile:1
# One recipe for every Gavel image; SERVICE picks which (catalog, room, tender, payment, notify,
# gateway). The room image also runs the room-projector (`project`), the payment image the payment
# sandbox, the notify image the mail and SMS sandboxes (deploy/k8s/README.md).
#
#   docker build --build-arg SERVICE=room -t gavel/room:$(git rev-parse --short HEAD) .
#
# Only libs/ and that one service are installed, at the versions pinned in constraints.txt (the
# file `make lock` writes for requirements.txt), never the dev tools requirements.txt adds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Fail the build at once rather than produce an image with nothing to run.
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<catalog|room|tender|payment|notify|gateway>" >&2; exit 1; }
WORKDIR /src
COPY constraints.txt ./
COPY libs/ libs/
COPY services/${SERVICE}/ services/${SERVICE}/
# A venv in /opt/gavel is what the runtime stage copies: the interpreter stays the base image's.
# Non-editable installs, so the image holds no source tree; every third-party dependency comes
# from a wheel (--only-binary), so neither stage needs a compiler.
RUN python -m venv /opt/gavel \
 && /opt/gavel/bin/pip install --only-binary=:all: -c constraints.txt \
      ./libs ./services/${SERVICE} \
 && /opt/gavel/bin/pip uninstall --yes pip setuptools wheel \
 && printf '#!/bin/sh\n# python -m %s.main [serve|migrate|project|...]\nexec /opt/gavel/bin/python -m %s.main "$@"\n' \
      "${SERVICE}" "${SERVICE}" > /opt/gavel/bin/gavel-service \
 && printf '#!/bin/sh\n# exit 0 when the process answers its health check (gavel_kit.healthcheck)\nexec /opt/gavel/bin/python -m gavel_kit.healthcheck %s "$@"\n' \
      "${SERVICE}" > /opt/gavel/bin/gavel-healthcheck \
 && chmod 0755 /opt/gavel/bin/gavel-service /opt/gavel/bin/gavel-healthcheck

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="gavel-${SERVICE}"
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --system --gid 10001 gavel \
 && useradd --system --uid 10001 --gid gavel --home-dir /var/lib/gavel --no-create-home --shell /usr/sbin/nologin gavel \
 && mkdir -p /var/lib/gavel \
 && chown gavel:gavel /var/lib/gavel
COPY --from=build /opt/gavel /opt/gavel
# No .pyc writes (the root filesystem is read-only in Kubernetes), unbuffered JSON logs, and every
# listener on all interfaces: inside a pod 127.0.0.1 would be unreachable for probes and peers.
ENV PATH=/opt/gavel/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GAVEL_HOST=0.0.0.0 \
    GAVEL_VAR_DIR=/var/lib/gavel \
    GAVEL_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/gavel
# Docker's own health check asks the process's gRPC health for "" (HTTP /healthz for the gateway):
# alive, not necessarily ready. Kubernetes uses its native gRPC/HTTP probes instead. The
# room-projector, run from the room image, needs `--health-cmd "gavel-healthcheck --process room-projector"`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["gavel-healthcheck"]
ENTRYPOINT ["gavel-service"]
CMD ["serve"]
