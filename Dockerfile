# A static dynakv binary in an empty image. Build: docker build -t dynakv .
# Run:  docker run -v $PWD/node1:/var/lib/dynakv -v $PWD/config.toml:/etc/dynakv/config.toml \
#         --network host dynakv
# (set the listen addresses in config.toml to the host's; data_dir under
# /var/lib/dynakv).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /dynakv ./cmd/dynakv

FROM scratch
COPY --from=build /dynakv /dynakv
# client, peer, gossip (TCP and UDP), metrics
EXPOSE 6379 16379 7946 7946/udp 9121
VOLUME /var/lib/dynakv
ENTRYPOINT ["/dynakv", "--config", "/etc/dynakv/config.toml"]
