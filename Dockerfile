# Multi-stage build of the IVR with Opus. The image runs on its own with the shipped prompts and
# settings (`docker run --network host ivr`); compose mounts sip-config/ and a data volume.
# Untested here (no Docker engine on our machines).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopus-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
RUN cargo build --release --features opus

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 ca-certificates espeak-ng && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /ivr ivr && mkdir -p /ivr/data && chown ivr /ivr/data
COPY --from=build /src/target/release/ivr /usr/local/bin/ivr
WORKDIR /ivr
COPY prompts ./prompts
COPY sip-config ./sip-config
# The PIN key is made on first start where the image's user may write; back the volume up.
# An empty directory on the data volume: add accounts with `ivr users add` (.dockerignore keeps
# every users file and key of the build machine out of the image).
RUN printf '# Local directory: add accounts with `ivr users add <account>`.\n' > /ivr/data/users.toml && chown ivr /ivr/data/users.toml && chmod 600 /ivr/data/users.toml
ENV IVR_HTTP__LISTEN=127.0.0.1:9090 IVR_CDR__FILE=/ivr/data/calls.jsonl IVR_DIRECTORY__PIN_KEY_FILE=/ivr/data/pin.key IVR_DIRECTORY__USERS=/ivr/data/users.toml
USER ivr
HEALTHCHECK --interval=10s --timeout=3s CMD ["/usr/local/bin/ivr", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ivr"]
