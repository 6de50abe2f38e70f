# promsnap in a container: `promsnap serve` as a sidecar next to Prometheus,
# or `promsnap restore latest --if-empty` as its init container.
#
#   docker build -t promsnap .
#   docker run --rm promsnap --version
#
# Two stages: the build in the official Rust image (the commit in --version
# comes from .git, which the build context includes), then only the binary on
# a distroless base that has glibc and CA certificates and nothing else (no
# shell, no package manager), running as the unprivileged user 65532. In a
# Prometheus pod, run it with the pod's user and fsGroup so it may read the
# TSDB and remove the snapshots it asked for (see deploy/kubernetes/).
FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
    && strip target/release/promsnap \
    && ./target/release/promsnap --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/promsnap /usr/bin/promsnap
COPY --from=build /src/examples/promsnap.toml /etc/promsnap/promsnap.toml
USER 65532:65532
EXPOSE 8431
ENTRYPOINT ["/usr/bin/promsnap"]
CMD ["--help"]
