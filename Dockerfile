# syntax=docker/dockerfile:1
# telltale container image: a release build in the Rust image, then only the binary (plus CA
# certificates and curl for the healthcheck) on Debian slim, running as an unprivileged user.
#
#   docker build -t telltale:local --build-arg TELLTALE_REVISION=$(git rev-parse --short HEAD) .
#
# See docs/operations.md for the docker-compose stack that uses it.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Shown by `telltale_build_info{revision=...}`.
ARG TELLTALE_REVISION=unknown
ENV TELLTALE_REVISION=${TELLTALE_REVISION}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin telltale \
    && install -D -m 0755 target/release/telltale /out/telltale \
    && strip /out/telltale

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/telltale --shell /usr/sbin/nologin telltale \
    && install -d -o telltale -g telltale -m 0750 /var/lib/telltale
COPY --from=build /out/telltale /usr/local/bin/telltale
USER 10001:10001
WORKDIR /var/lib/telltale
ENV TELLTALE_CONFIG=/etc/telltale/telltale.yaml
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["telltale"]
CMD ["run"]
