# Multi-stage build of the IVR with Opus. Untested here (no Docker engine on our machines).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopus-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --features opus

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ivr /usr/local/bin/ivr
WORKDIR /ivr
# sip-config/ and prompts/ are mounted by docker-compose.yml.
ENTRYPOINT ["/usr/local/bin/ivr"]
