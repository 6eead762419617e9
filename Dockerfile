# syntax=docker/dockerfile:1
#
# One Dockerfile for the whole adaptive-mfa workspace.
#
# Targets:
#   login-intake, risk-worker, code-worker, verifier, login-page
#       one service each: only that binary, ENTRYPOINT set to it.
#       e.g. docker build --target verifier -t adaptive-mfa/verifier .
#   runtime (the default, last stage)
#       all four binaries; pick one with the command:
#       docker build -t adaptive-mfa . && docker run --rm adaptive-mfa risk-worker
#
# Configuration is by environment variables only (MFA_*, RUST_LOG); see
# docker-compose.yml. Each of the four services needs a signing key of its own,
# MFA_AUDIT_SIGNING_KEY (`cargo run -p shared --bin audit-keygen` makes a set and
# the auditor's public key file). Migrations are embedded in the binaries.

############################################################################
# Build: compiles the four service binaries and the sign-in page once.
############################################################################
FROM rust:1-bookworm AS builder

# rdkafka builds its bundled librdkafka with make/g++ and links zlib and
# OpenSSL; python3 is used by some of librdkafka's build scripts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*

# Should sqlx's compile-time checked query macros (query!) ever be used, build
# from committed .sqlx metadata, never from a live database (harmless now).
ENV SQLX_OFFLINE=true

WORKDIR /src
COPY . .

# The cargo registry and target/ live in BuildKit cache mounts, so rebuilds
# only recompile what changed. The cache mount is not part of the image,
# hence the binaries are copied out to /out inside the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release \
        -p login-intake -p risk-worker -p code-worker -p verifier -p login-page \
 && mkdir -p /out \
 && cp target/release/login-intake \
       target/release/risk-worker \
       target/release/code-worker \
       target/release/verifier \
       target/release/login-page \
       /out/

############################################################################
# Base for every runtime image: slim Debian, TLS roots, OpenSSL, non-root user.
############################################################################
FROM debian:bookworm-slim AS base

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin mfa

USER 10001:10001

############################################################################
# One image per service.
############################################################################
FROM base AS login-intake
COPY --from=builder /out/login-intake /usr/local/bin/login-intake
# In a container the API must listen on all interfaces, not 127.0.0.1.
ENV MFA_INTAKE_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/login-intake"]

FROM base AS risk-worker
COPY --from=builder /out/risk-worker /usr/local/bin/risk-worker
ENTRYPOINT ["/usr/local/bin/risk-worker"]

FROM base AS code-worker
COPY --from=builder /out/code-worker /usr/local/bin/code-worker
ENTRYPOINT ["/usr/local/bin/code-worker"]

FROM base AS verifier
COPY --from=builder /out/verifier /usr/local/bin/verifier
ENV MFA_VERIFIER_ADDR=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/verifier"]

FROM base AS login-page
COPY --from=builder /out/login-page /usr/local/bin/login-page
ENV MFA_LOGIN_PAGE_ADDR=0.0.0.0:8082
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/login-page"]

############################################################################
# Default target: all the binaries; the command names the service to run.
############################################################################
FROM base AS runtime
COPY --from=builder /out/ /usr/local/bin/
ENV MFA_INTAKE_ADDR=0.0.0.0:8080 \
    MFA_VERIFIER_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
CMD ["login-intake"]
