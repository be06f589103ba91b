# syntax=docker/dockerfile:1

# ---- build ----------------------------------------------------------------
FROM golang:1.26 AS build
WORKDIR /src

# Download modules first so this layer is cached until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /orgservice ./cmd/orgservice

# Writable data directory for embedded mode (MONGO_URL unset): the embedded
# database and the generated secret.key live here. Owned by the nonroot user.
RUN mkdir -p /out/data

# ---- runtime --------------------------------------------------------------
# Static distroless image: no shell, no package manager, runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /orgservice /orgservice
COPY --from=build --chown=65532:65532 /out/data /data

ENV HTTP_ADDR=:8080 \
    DATA_DIR=/data

USER nonroot:nonroot
EXPOSE 8080

# The image has no shell or curl: the binary probes itself
# (`orgservice healthcheck` GETs /readyz on HTTP_ADDR and exits 0 or 1).
# Orchestrators can use GET /healthz (liveness) and GET /readyz (readiness).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/orgservice", "healthcheck"]

ENTRYPOINT ["/orgservice"]
