# syntax=docker/dockerfile:1

# ---- build ---------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src

COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/switchboard ./cmd/switchboard \
 && mkdir -p /out/data

# ---- runtime -------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/switchboard /switchboard
# /data must be writable by the nonroot user (uid 65532); a named volume
# mounted there inherits this ownership.
COPY --from=build --chown=65532:65532 /out/data /data

ENV SWITCHBOARD_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
USER nonroot

ENTRYPOINT ["/switchboard"]
CMD ["serve"]
