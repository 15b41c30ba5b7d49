# ---- build ------------------------------------------------------------------
# rust:1-bookworm already has perl and make (vendored OpenSSL); libsqlite3 and
# libpq are compiled in through the crates' `bundled` features.
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependency-caching layer: build every dependency against stub sources so this
# layer is reused until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. Drop the stub crate's fingerprint so cargo rebuilds it even
# when the copied files carry older modification times.
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN rm -rf target/release/.fingerprint/tessera-* \
    && cargo build --release --locked \
    && cp target/release/tessera /usr/local/bin/tessera

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid tessera \
        --home-dir /var/lib/tessera --no-create-home \
        --shell /usr/sbin/nologin tessera \
    && mkdir -p /var/lib/tessera \
    && chown tessera:tessera /var/lib/tessera

COPY --from=builder /usr/local/bin/tessera /usr/local/bin/tessera

WORKDIR /var/lib/tessera
USER tessera

# The SQLite database and the key file beside it (or, with PostgreSQL, the key
# file in TESSERA_DATA_DIR) live on the volume, so they outlive the container.
ENV TESSERA_BIND=0.0.0.0:8080 \
    TESSERA_DATABASE_URL=sqlite:///var/lib/tessera/tessera.db \
    TESSERA_DATA_DIR=/var/lib/tessera \
    TESSERA_LOG=json
VOLUME /var/lib/tessera

EXPOSE 8080

# The slim image has no curl: the binary probes its own /readyz (exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["tessera", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
