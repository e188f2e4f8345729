# syntax=docker/dockerfile:1
# banjia's image: a static binary (no cgo) on Debian slim, run as an
# unprivileged numeric user so that Kubernetes' runAsNonRoot can verify it.
# Debian slim rather than distroless because the shards' init step uses sh
# and cp, and kubectl cp needs tar in the image.
#
#   docker build -t banjia:1.0.0 --build-arg VERSION=1.0.0 .
#   docker run --rm -v "$PWD:/var/lib/banjia" banjia:1.0.0 job status

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-trixie AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/banjia ./cmd/banjia

FROM debian:trixie-slim
# CA certificates for TLS to the old and new servers; tzdata for --time-zone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 banjia \
 && useradd --uid 65532 --gid 65532 --home-dir /var/lib/banjia --no-create-home --shell /usr/sbin/nologin banjia \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/banjia
COPY --from=build /out/banjia /usr/local/bin/banjia
USER 65532:65532
WORKDIR /var/lib/banjia
ENV BANJIA_STATE=/var/lib/banjia/banjia.db
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/banjia"]
CMD ["--help"]
