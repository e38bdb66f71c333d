# syntax=docker/dockerfile:1
# Lifeboat's container image (docs/install.md):
#
#   docker build -t lifeboat .
#   docker run --rm -e LIFEBOAT_PLANS=/opt/lifeboat-demo/plans lifeboat demo --once
#   docker run -d --init --stop-timeout 45 -p 9464:9464 \
#     -v /srv/lifeboat/plans:/etc/lifeboat/plans:ro -v lifeboat:/var/lib/lifeboat lifeboat
#
# The first build compiles every dependency: about 18 minutes on 2 cores.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# --- build ---------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the compiled dependencies between
# builds of the image (BuildKit); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lifeboat \
 && install -m 0755 target/release/lifeboat /usr/local/bin/lifeboat

# --- runtime -------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
ARG DEBIAN_RELEASE
# pg_dump must be of the server's major version or newer (Lifeboat refuses
# an older one): the PostgreSQL project's packages give the newest, which
# dumps and restores every older server. Build with --build-arg PG_MAJOR=N
# to choose another.
ARG PG_MAJOR=18
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc -o /usr/share/keyrings/pgdg.asc; \
    echo "deb [signed-by=/usr/share/keyrings/pgdg.asc] https://apt.postgresql.org/pub/repos/apt ${DEBIAN_RELEASE}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}"; \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/*

# A dedicated user; /var/lib/lifeboat holds the catalog and the work
# folder, /etc/lifeboat/plans the plans (mount yours there, read-only),
# /opt/lifeboat-demo the demo plan and, once it runs, its data and vaults.
RUN set -eux; \
    groupadd --system --gid 10001 lifeboat; \
    useradd --system --uid 10001 --gid lifeboat --home-dir /var/lib/lifeboat \
      --shell /usr/sbin/nologin lifeboat; \
    install -d -o lifeboat -g lifeboat -m 0700 /var/lib/lifeboat; \
    install -d -m 0755 /etc/lifeboat/plans; \
    install -d -o lifeboat -g lifeboat -m 0755 /opt/lifeboat-demo /opt/lifeboat-demo/plans
COPY --from=builder /usr/local/bin/lifeboat /usr/local/bin/lifeboat
COPY --chown=lifeboat:lifeboat plans/demo.toml /opt/lifeboat-demo/plans/demo.toml

# /healthz, /readyz and /metrics must be reachable from outside the
# container: listen on every interface of its network namespace.
ENV LIFEBOAT_CATALOG=/var/lib/lifeboat/lifeboat.db \
    LIFEBOAT_PLANS=/etc/lifeboat/plans \
    LIFEBOAT_LISTEN=0.0.0.0:9464 \
    LIFEBOAT_PG_BIN=/usr/lib/postgresql/${PG_MAJOR}/bin
WORKDIR /var/lib/lifeboat
VOLUME /var/lib/lifeboat
USER lifeboat:lifeboat
EXPOSE 9464
ENTRYPOINT ["lifeboat"]
CMD ["daemon"]
