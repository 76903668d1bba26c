# Builds the berth agent image. The in-cluster manifests arrive with the packaging work.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# OpenSSL and zlib are linked into the binary (.cargo/config.toml): the
# runtime image needs only glibc and the CA certificates.
RUN cargo build --release --locked --package berth

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# berth runs `template` and hands every other command to berth-agent, which
# must sit next to it (agent/src/front.rs).
COPY --from=build /src/target/release/berth /src/target/release/berth-agent /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/berth"]
