#!/usr/bin/env bash
# Builds a Midge container image from a midge binary already built on this machine, without
# pulling any base image: the image is FROM scratch and holds the binary, the shared libraries
# `ldd` says it loads, the dynamic loader, and a few files of /etc. It behaves like the image
# of deploy/Dockerfile (same paths, user, ports, volume and defaults), except that its health
# check runs `midge ctl` (there is no curl in it).
#
# Usage: deploy/local-image.sh [BINARY] [TAG]
#   BINARY  defaults to ${CARGO_TARGET_DIR:-target}/release/midge
#   TAG     defaults to midge:local
#
# Example: cargo build --release && deploy/local-image.sh && docker compose -f deploy/compose.yaml up -d
set -euo pipefail

bin=${1:-${CARGO_TARGET_DIR:-target}/release/midge}
tag=${2:-midge:local}

die() { echo "local-image.sh: $*" >&2; exit 1; }

[[ -f $bin && -x $bin ]] || die "no executable at $bin (build it with: cargo build --release)"
command -v docker >/dev/null 2>&1 || die "docker is not installed"
command -v ldd >/dev/null 2>&1 || die "ldd is not installed"

ctx=$(mktemp -d "${TMPDIR:-/tmp}/midge-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
# /data is kept apart: it is copied with the broker's user as owner (see the Dockerfile).
mkdir -p "$root/usr/local/bin" "$root/etc/midge" "$root/tmp" "$ctx/owned/data"
cp -L "$bin" "$root/usr/local/bin/midge"

# Every absolute path ldd prints: "libX.so => /path (0x...)" lines and the loader's own
# "/lib64/ld-linux-x86-64.so.2 (0x...)" line. Copied to the same path, symlinks resolved.
# A statically linked binary lists none, which is fine.
libs=$(ldd "$bin" 2>/dev/null | grep -oE '/[^ ()]+' || true)
if [[ -z $libs ]] && ! ldd "$bin" 2>&1 | grep -q 'not a dynamic executable'; then
    die "ldd listed no libraries for $bin"
fi
if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
    die "some libraries of $bin are missing on this machine: $(ldd "$bin" | grep 'not found')"
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

# Name resolution (compose service names, Kubernetes DNS) through /etc/hosts and DNS, which
# Docker provides at run time; a user and group for the non-root user id.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\nmidge:x:65532:65532:midge:/data:/sbin/nologin\n' \
    > "$root/etc/passwd"
printf 'root:x:0:\nmidge:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"

# "midge 0.1.0" -> "0.1.0"; anything odd becomes "unknown" rather than breaking the label.
version=$("$root/usr/local/bin/midge" --version 2>/dev/null | head -n 1 | awk '{print $NF}' || true)
[[ $version =~ ^[A-Za-z0-9._+-]+$ ]] || version=unknown

cat > "$ctx/Dockerfile" <<EOF
FROM scratch
COPY --chown=0:0 rootfs/ /
# /data belongs to the broker's user (a new named volume takes over this owner).
COPY --chown=65532:65532 owned/ /
LABEL org.opencontainers.image.title="midge" \\
      org.opencontainers.image.description="Midge, a clustered MQTT broker (local build of $(basename "$bin"))" \\
      org.opencontainers.image.version="$version" \\
      org.opencontainers.image.created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ENV MIDGE__DATA_DIR=/data \\
    MIDGE__LISTENER__BIND=0.0.0.0 \\
    MIDGE__ADMIN__BIND=0.0.0.0
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 1883 8883 8080 8081 8888 7946
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
  CMD ["/usr/local/bin/midge", "ctl", "--admin", "http://127.0.0.1:8888", "cluster", "status"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/midge"]
EOF


docker build -q -t "$tag" "$ctx" >/dev/null
echo "Built $tag from $bin ($(echo "$libs" | grep -c . || true) libraries)."
