# promsnap in a container: the sidecar image for Kubernetes
# (deploy/kubernetes/). Multi-stage: Debian 12's Rust toolchain image builds
# the binary; the runtime image is distroless (glibc, CA certificates, no
# shell, no package manager) and runs as an unprivileged user.
#
#   docker build -t promsnap .
#   docker run --rm promsnap --version
#
# Not built in promsnap's CI (its machine has no container runtime); the
# binary it packages is the one the tests exercise, built the same way.

FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# The commit in `promsnap --version` comes from .git (see build.rs).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin promsnap \
    && install -m 0755 target/release/promsnap /promsnap

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /promsnap /usr/bin/promsnap
COPY examples/promsnap-alerts.yml /usr/share/doc/promsnap/examples/
# 65532, distroless's "nonroot". In a Prometheus pod the pod's securityContext
# (runAsUser, fsGroup) decides; the data volume must be readable by it.
USER 65532:65532
ENTRYPOINT ["/usr/bin/promsnap"]
CMD ["--help"]
