# The nba sidecar: a static binary on a distroless base, run as non-root.
#
#   docker build -t nba .
#   docker run -p 8080:8080 -e NBA_ADMIN_TOKEN=... nba
#
# 8080 is the public API. 8081 is the admin API (reload, status, pprof); it
# listens on loopback by default, so it is reachable only from inside the
# container unless serve is told otherwise, on purpose.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/nba ./cmd/nba \
    && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nba /nba
# Durable state (feedback log, checkpoints) lives here; mount a volume to keep it.
COPY --from=build --chown=65532:65532 /out/state /var/lib/nba
WORKDIR /var/lib/nba
VOLUME /var/lib/nba
USER 65532:65532
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/nba", "healthcheck", "-addr", "127.0.0.1:8080"]
ENTRYPOINT ["/nba"]
CMD ["serve", "-http.addr", "0.0.0.0:8080", "-state", "/var/lib/nba"]
