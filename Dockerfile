# One image with every binary: leasehold-api (serve, migrate, accounts), leasehold-worker,
# and leasehold, the command-line client. Base images are pinned to exact tags
# (docker/check.sh checks it).
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p leasehold-server -p leasehold-cli

FROM debian:12.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 leasehold
COPY --from=build /src/target/release/leasehold-api /src/target/release/leasehold-worker \
    /src/target/release/leasehold /usr/local/bin/
USER leasehold
WORKDIR /home/leasehold
ENV LEASEHOLD_LISTEN=0.0.0.0:8080
EXPOSE 8080
CMD ["leasehold-api"]
