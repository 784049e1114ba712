# ngx_http_qcc_module in a container: Debian 12's nginx with the module,
# running conf/qcc.conf.
#
#   docker build -t qcc-gateway .
#   docker run -d --name qcc -p 8080:8080 -p 8443:8443 \
#       -e QCC_KEY=<AppKey> \
#       -v /srv/qcc/secret-key:/run/secrets/qcc-secret-key:ro \
#       -v /srv/qcc/qcc.htpasswd:/etc/nginx/qcc.htpasswd:ro \
#       -v qcc-state:/var/lib/nginx/qcc \
#       qcc-gateway
#
# The build stage runs the commands `make test` runs (make deps, make) and
# `make deb`, whose package the run stage installs: the module, the
# nginx-abi dependency that pulls the matching nginx, and the libraries.
# t/074-docker.t checks these steps against the Makefile and the
# entrypoint against conf/qcc.conf (no Docker engine runs in the tests).

# --- build ------------------------------------------------------------------
FROM debian:bookworm-slim AS build

RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends make ca-certificates

WORKDIR /src
COPY . .

# the Debian packages of `make test`, the build of the README, the package
RUN make deps && make && make deb

# --- run --------------------------------------------------------------------
FROM debian:bookworm-slim

COPY --from=build /src/build/deb/ /tmp/deb/

# the package pulls nginx (nginx-abi-*) and the libraries it links; curl is
# for the health check
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends ca-certificates curl \
        /tmp/deb/libnginx-mod-http-qcc_*.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/deb

COPY conf/qcc.conf /etc/nginx/nginx.conf
COPY docker/qcc-entrypoint /usr/local/bin/qcc-entrypoint

# The SecretKey comes from a mounted file (a Docker or Kubernetes secret),
# read once by the master process; the workers run as www-data (`user
# www-data;` in qcc.conf).  The push receiver's journal, temp files and
# spool live in /var/lib/nginx/qcc: a volume, private to www-data.  Logs
# go to the container's output.
RUN ln -s /run/secrets/qcc-secret-key /etc/nginx/qcc-secret-key \
    && install -d -o www-data -g www-data -m 0700 /var/lib/nginx/qcc \
    && ln -sf /dev/stdout /var/log/nginx/qcc-access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log

VOLUME /var/lib/nginx/qcc
EXPOSE 8080 8443

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/qcc/status || exit 1

STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/qcc-entrypoint"]
