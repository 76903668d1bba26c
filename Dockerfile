# The berth image: one binary, `berth`, whose default command is the agent,
# run as a non-root user. Built with podman or docker:
#   podman build -t berth .
# The base images are arguments so that a machine without access to a
# registry can pass images of its own making (tests/tools/build-image.sh).
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target directories are caches of the builder, not parts
# of the image: a rebuild after a small change compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p berth \
 && install -D target/release/berth /out/berth

FROM ${RUNTIME_IMAGE}
# libgit2's HTTPS and SSH transports use the system's OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/berth /usr/local/bin/berth
# The cache the agent writes (an emptyDir in the manifests); the root
# filesystem stays read-only.
RUN install -d -o 65532 -g 65532 /var/cache/berth
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["run", "--config", "/etc/berth/berth.yaml"]
