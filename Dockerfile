# syntax=docker/dockerfile:1
# The service's image: built on the official Rust image, run on Debian slim as a non-root user.
#   docker build -t huckleberry .
#   docker run --rm -e DATABASE_URL=... huckleberry migrate   # apply the migrations, then exit
#   docker run -e DATABASE_URL=... -e INNGEST_SIGNING_KEY=... -e INNGEST_EVENT_KEY=... \
#     -p 3000:3000 huckleberry                                  # serve (the default command)
# scripts/dockerfile-check.sh runs this file's build command and start command in CI, where no
# Docker engine runs.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /build
COPY . .
# The one build command (scripts/dockerfile-check.sh reads this line): the locked dependencies,
# release profile, the service binary only. No OpenSSL or libpq: TLS is rustls throughout.
RUN cargo build --release --locked --bin huckleberry
RUN install -D -m 0755 target/release/huckleberry /out/huckleberry

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: the providers' HTTPS clients verify against the system roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin huckleberry
COPY --from=builder /out/huckleberry /usr/local/bin/huckleberry
USER 10001:10001
ENV PORT=3000 \
    LOG_FORMAT=json
EXPOSE 3000
# Probes: GET /healthz (alive), GET /readyz (database reachable, migrations applied).
# SIGTERM stops it: requests in flight get SHUTDOWN_GRACE_SECS (30) to finish.
ENTRYPOINT ["/usr/local/bin/huckleberry"]
CMD ["serve"]
