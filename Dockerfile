# Builds the berth agent image. The in-cluster manifests arrive with the packaging work.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# berth-agent links OpenSSL and zlib statically (.cargo/config.toml), so the
# runtime image needs only glibc and the CA certificates; `berth` itself is a
# static musl binary (docs/benchmarks.md, "A static berth").
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rustup target add x86_64-unknown-linux-musl \
 && cargo xtask dist

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# berth runs `template` and hands every other command to berth-agent, which
# must sit next to it (agent/src/front.rs).
COPY --from=build /src/target/dist/berth /src/target/dist/berth-agent /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/berth"]
