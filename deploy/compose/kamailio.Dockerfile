# Debian's Kamailio, the same package the test suite runs.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends kamailio \
    && rm -rf /var/lib/apt/lists/*
