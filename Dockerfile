# syntax=docker/dockerfile:1
# Waypost's standalone server. Build and run (docs/deploying.md):
#   docker build -t waypost .
#   docker run --rm -p 8080:8080 waypost                  # the example rules
#   docker run --rm -p 8080:8080 -v "$PWD/rules:/etc/waypost:ro" waypost
#   docker run --rm -p 8080:8080 -e WAYPOST_DB=postgresql://user:pass@db/waypost waypost
# Settings are WAYPOST_* environment variables (docs/server.md); arguments after the image name
# are more `waypost serve` flags.

# The extras the server needs: the server itself, the admin API and page, PostgreSQL.
ARG WAYPOST_EXTRAS=server,admin,postgres

FROM python:3.11-slim-bookworm AS build
ARG WAYPOST_EXTRAS
# A C compiler for the compiled store, waypost._plainstore; the Python headers come with the image.
# Not pinned (DL3008): Debian replaces an exact version at each point release, which would break
# the build; the compiler does not change what the wheel does.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY requirements/dev.txt requirements/dev.txt
COPY src src
# Waypost's wheel and every wheel it needs, at the versions the test suite runs with. The C
# extension is optional in setup.py (a build without a compiler carries on without it), so the
# second command makes sure this wheel has it.
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint requirements/dev.txt ".[${WAYPOST_EXTRAS}]" \
 && python -c "import glob, sys, zipfile; names = zipfile.ZipFile(glob.glob('/wheels/waypost-*.whl')[0]).namelist(); sys.exit(0 if any(n.startswith('waypost/_plainstore.') and n.endswith('.so') for n in names) else 'the waypost wheel has no compiled waypost._plainstore')"

FROM python:3.11-slim-bookworm AS runtime
ARG WAYPOST_EXTRAS
# The wheels only: no compiler, no source, no pip cache. The wheelhouse holds the one version of
# each package resolved above, so nothing here is unpinned.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/waypost \
 && /opt/waypost/bin/pip install --no-cache-dir --no-index --find-links /wheels "waypost[${WAYPOST_EXTRAS}]" \
 && groupadd --system --gid 10001 waypost \
 && useradd --system --uid 10001 --gid waypost --home-dir /var/lib/waypost --no-create-home \
        --shell /usr/sbin/nologin waypost \
 && install -d -o waypost -g waypost -m 0700 /var/lib/waypost
# The example rules, served until a directory of your own is mounted over /etc/waypost (a whole
# directory: a file mounted alone keeps its old inode when the file is replaced by a rename, so
# the server would never see the change).
COPY examples/rules.yaml /etc/waypost/rules.yaml
ENV PATH=/opt/waypost/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAYPOST_HOST=0.0.0.0 \
    WAYPOST_PORT=8080 \
    WAYPOST_RULES=/etc/waypost/rules.yaml
# A SQLite store goes here (-e WAYPOST_DB=sqlite:///waypost.db): mount a volume on it.
WORKDIR /var/lib/waypost
USER 10001:10001
EXPOSE 8080
# Healthy while the server answers; "degraded" (the rules it serves are not its source's latest)
# is in the body and in the waypost_degraded metric. Python's urllib: the slim image has no curl.
# With TLS the check skips verification: the certificate is for the site's name, not 127.0.0.1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('WAYPOST_TLS_CERT')); url = ('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('WAYPOST_PORT', '8080') + '/_waypost/health'; urllib.request.urlopen(url, timeout=4, context=ssl._create_unverified_context() if tls else None).read()"]
# WAYPOST_RULES (a setting of this image, not of Waypost) is the RULES argument: the file served,
# or with WAYPOST_DB the file that seeds an empty store; empty, there is none. `exec` makes the
# server PID 1, so `docker stop`'s SIGTERM reaches it: it finishes the requests in flight (give
# it more than the default 10 s: docker stop -t 35).
ENTRYPOINT ["/bin/sh", "-c", "exec waypost serve ${WAYPOST_RULES:+\"$WAYPOST_RULES\"} \"$@\"", "waypost"]
CMD []
