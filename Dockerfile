# The operator image: the release binary plus the restic the operator calls itself (init, checks,
# listings, retention), non-root with a numeric UID so `runAsNonRoot` can verify it.
#   docker build -t datarestor-operator:0.1.0 .
# The test suite builds an equivalent image without a daemon (e2e/cluster/images.sh).
ARG RESTIC_VERSION=0.18.1

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin datarestor-operator

# The same restic the Jobs run (job.rs RESTIC_IMAGE), so both read the repository alike.
FROM docker.io/restic/restic:${RESTIC_VERSION} AS restic

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/datarestor-operator /usr/local/bin/datarestor-operator
COPY --from=restic /usr/bin/restic /usr/local/bin/restic
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/datarestor-operator"]
CMD ["run"]
