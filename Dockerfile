# syntax=docker/dockerfile:1
# Both commands as static binaries on a minimal, non-root base with CA
# certificates. The streamer is the default command; run the backfill with
# `docker run … backfill --source …`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/streamer ./cmd/backfill

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/streamer /out/backfill /usr/local/bin/
USER 65532:65532
EXPOSE 9090
CMD ["streamer"]
