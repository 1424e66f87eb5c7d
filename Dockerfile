# Builds leasehold-api and leasehold-worker into a small runtime image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p leasehold-server

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 leasehold
COPY --from=build /src/target/release/leasehold-api /src/target/release/leasehold-worker /usr/local/bin/
USER leasehold
WORKDIR /home/leasehold
ENV LEASEHOLD_LISTEN=0.0.0.0:8080
EXPOSE 8080
CMD ["leasehold-api"]
