#!/usr/bin/env bash
# Builds the images a real node runs, since no registry is reachable here: the
# Debian base (debootstrap from the machine's own apt mirror), a pause image
# (tools/images/pause.c, static, FROM scratch) and the project's two images (the
# top-level Dockerfile's targets `operator` and `modelserver` on that base,
# installed offline from a wheelhouse downloaded on the host). Each is cached
# outside the repo, keyed by the digest
# of its inputs, with a `docker save` tarball for `ctr -n k8s.io images import`;
# a warm machine only hashes the inputs.
#
# Usage:
#   build.sh                 build or reuse; the LAST (and only) stdout line is the
#                            path of an env file with exactly OPERATOR_IMAGE,
#                            OPERATOR_IMAGE_TAR, MODELSERVER_IMAGE,
#                            MODELSERVER_IMAGE_TAR, PAUSE_IMAGE, PAUSE_IMAGE_TAR,
#                            BASE_IMAGE
#   build.sh --docker-host   print the DOCKER_HOST the images live in (starting
#                            the private dockerd if it must)
#   build.sh --stop-daemon   stop the private dockerd this script started
#
# Docker: $DOCKER_HOST if set (it must answer), else the private dockerd if it is
# running, else a daemon at the default socket, else a private dockerd started
# here (data root in the cache; socket, exec root and pidfile in /run) that never
# touches the host's networking and keeps running for the next call.
set -euo pipefail

# Everything but the final path goes to stderr, whatever a command prints.
exec 3>&1 1>&2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache_root="${MODELROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelrollout}"
# Absolute: dockerd's --data-root and the paths in the env file must not depend on a cwd.
mkdir -p "$cache_root/images"
images_dir="$(cd "$cache_root/images" && pwd)"
docker_cmd="${DOCKER:-docker}"

suite=bookworm
# python-is-python3: the public python:*-slim images answer to `python` as well,
# so the local base is a stand-in for them for whatever else runs on it.
# libgomp1: LightGBM's wheel links the system OpenMP runtime (python:*-slim has it).
base_include=python3,python3-venv,python-is-python3,ca-certificates,libgomp1
# The machine's bundle holds an extra authority Debian's package does not.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
# Bump when a recipe below changes in a way its inputs do not show.
base_recipe=1 pause_recipe=1 wheel_recipe=1 project_recipe=1
# Old project images are 0.3-0.8 GB each; a developer's edit loop must not fill the
# disk. The count is per image (operator, model server).
keep_project_images="${MODELROLLOUT_IMAGES_KEEP:-3}"

data_root="$images_dir/docker"
# /run, not the cache: sockets need short paths, and a reboot must not leave a
# stale pidfile behind. One directory per data root, so two caches never share.
run_dir="${MODELROLLOUT_IMAGES_RUN_DIR:-/run/modelrollout-images-$(printf '%s' "$data_root" | sha256sum | cut -c1-10)}"
private_sock="$run_dir/docker.sock"
pidfile="$run_dir/dockerd.pid"
dockerd_log="$images_dir/dockerd.log"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
digest() { sha256sum | cut -c1-12; }

usage() { sed -n '11,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

mode=build
case "${1:-}" in
  "") ;;
  --docker-host) mode=docker-host ;;
  --stop-daemon) mode=stop ;;
  -h | --help) usage >&3; exit 0 ;;
  *) usage; exit 2 ;;
esac

# One run at a time per cache: they share the daemon, the tarballs and the env files.
exec 9>"$images_dir/.lock"
if ! flock -n 9; then
  log "waiting for another build.sh run on $images_dir"
  flock 9
fi

# Temporary directories, removed however the script ends. debootstrap mounts
# /proc and /sys inside its target and leaves them mounted when it fails:
# unmount before deleting, and never let rm cross into another file system.
tmp_dirs=()
cleanup() {
  local d m
  for d in "${tmp_dirs[@]}"; do
    [[ -e "$d" ]] || continue
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
      < <(findmnt -rn -o TARGET | grep -F "$d/" | sort -r)
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT
new_tmp() {  # new_tmp FINAL_DIR: sets $tmp, a scratch directory beside it, renamed into place when done
  tmp="$1.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"; tmp_dirs+=("$tmp")
}

# ---------------------------------------------------------------- Docker engine

docker_answers() { timeout 20 "$docker_cmd" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

private_pid() {  # the private dockerd's pid, if the pidfile names a live one of ours
  local pid cmdline
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  # The pid may have been reused since: it must be a dockerd on our data root.
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  [[ "$cmdline" == dockerd\ * && "$cmdline" == *" --data-root $data_root "* ]] || return 1
  printf '%s' "$pid"
}

start_private_dockerd() {
  command -v dockerd >/dev/null || die "no Docker daemon answers and dockerd is not installed (make deps installs docker.io)"
  [[ $(id -u) -eq 0 ]] || die "no Docker daemon answers, and starting a private dockerd needs root"
  mkdir -p "$run_dir" "$data_root"
  chmod 700 "$run_dir"
  if [[ -S /run/containerd/containerd.sock ]]; then
    # dockerd 20.10 adopts a containerd listening there instead of starting its
    # own; images and layers still stay in our data root.
    log "note: dockerd will run its containers through the containerd at /run/containerd/containerd.sock"
  fi
  log "starting a private dockerd (data root $data_root, socket $private_sock, log $dockerd_log);"
  log "it keeps running for the next build; stop it with: bash tools/images/build.sh --stop-daemon"
  # The daemon outlives this script, so it must inherit no descriptor but its
  # log: not fd 9 (the lock, held forever) nor fd 3 or any pipe of the caller's
  # (whoever reads our stdout, $(...) or make, would wait for its EOF forever).
  # setsid: Ctrl-C on make must not stop the daemon halfway through a layer.
  # --bridge=none/--iptables=false/--ip-forward=false/--ip-masq=false: no host
  # networking changes at all; builds and tests use --network=none (or host).
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid dockerd \
      --data-root "$data_root" \
      --exec-root "$run_dir/exec" \
      --pidfile "$pidfile" \
      --host "unix://$private_sock" \
      --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
      --log-level warn
  ) </dev/null >"$dockerd_log" 2>&1 &
  wait_for_private_dockerd $!
  log "private dockerd $(private_pid || true) answers (server $("$docker_cmd" version --format '{{.Server.Version}}'))"
}

wait_for_private_dockerd() {  # wait_for_private_dockerd PID: until it answers, 60 s at most
  local pid="$1" deadline=$((SECONDS + 60))
  export DOCKER_HOST="unix://$private_sock"
  until docker_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "the private dockerd exited while starting; last lines of $dockerd_log:
$(tail -n 15 "$dockerd_log")"
    fi
    ((SECONDS < deadline)) || die "the private dockerd ($pid) did not answer on $private_sock within 60 s; see $dockerd_log, or stop it with --stop-daemon"
    sleep 0.5
  done
}

ensure_docker() {
  command -v "$docker_cmd" >/dev/null || die "no docker client ($docker_cmd) on PATH (make deps installs docker.io)"
  # `export DOCKER_HOST=$(build.sh --docker-host)` names the private daemon: it
  # is started again below if it was stopped since.
  [[ "${DOCKER_HOST:-}" == "unix://$private_sock" ]] && unset DOCKER_HOST
  if [[ -n "${DOCKER_HOST:-}" ]]; then
    docker_answers || die "DOCKER_HOST=$DOCKER_HOST does not answer: $("$docker_cmd" version 2>&1 | tail -n 1)"
    return
  fi
  if [[ -S "$private_sock" ]] && DOCKER_HOST="unix://$private_sock" docker_answers; then
    export DOCKER_HOST="unix://$private_sock"
    return
  fi
  local pid
  if pid="$(private_pid)"; then
    log "waiting for the private dockerd ($pid) to answer"
    wait_for_private_dockerd "$pid"
    return
  fi
  docker_answers && return
  start_private_dockerd
}

stop_private_dockerd() {
  local pid
  if ! pid="$(private_pid)"; then
    log "no private dockerd is running for $data_root"
    return
  fi
  log "stopping the private dockerd (pid $pid); it stops its containerd and containers"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || die "dockerd $pid still runs 60 s after SIGTERM; see $dockerd_log"
    sleep 0.5
  done
  # Its sockets and pidfile are gone with it; what is left is empty directories.
  rm -rf --one-file-system "$run_dir" 2>/dev/null || true
  log "stopped"
}

if [[ $mode == stop ]]; then
  stop_private_dockerd
  exit 0
fi
ensure_docker
if [[ $mode == docker-host ]]; then
  printf '%s\n' "${DOCKER_HOST:-unix:///var/run/docker.sock}" >&3
  exit 0
fi

# The legacy builder: BuildKit would buy nothing used here (Debian's 20.10 client
# has no --build-context), and a newer client without the buildx plugin refuses it.
export DOCKER_BUILDKIT=0

image_exists() { "$docker_cmd" image inspect "$1" >/dev/null 2>&1; }

# docker_build LOG_FILE ARGS...: the build's output to LOG_FILE, its steps to stderr.
docker_build() {
  local build_log="$1"; shift
  if ! "$docker_cmd" build "$@" 2>&1 | tee "$build_log" \
      | awk '/^Step [0-9]+\/[0-9]+ : / { print "[images]   " $0 > "/dev/stderr"; fflush("/dev/stderr") }'; then
    die "docker build failed; last lines of $build_log:
$(tail -n 30 "$build_log")"
  fi
}

# ensure_saved WHAT IMAGE DIR BUILD_FN: reuse DIR (a complete cache entry) when
# it holds IMAGE's tarball, loading the image if the daemon lost it; otherwise
# BUILD_FN TMP (unless the daemon already has IMAGE, whose tag is the key), then
# `docker save` into TMP/image.tar and TMP becomes DIR.
ensure_saved() {
  local what="$1" image="$2" dir="$3" build_fn="$4"
  if [[ -f "$dir/.complete" ]]; then
    touch "$dir"
    if image_exists "$image"; then
      log "$what: reused $image ($dir/image.tar)"
    else
      log "$what: loading $image into the daemon from $dir/image.tar"
      "$docker_cmd" load -q -i "$dir/image.tar" >/dev/null
    fi
    return
  fi
  local tmp started=$SECONDS
  new_tmp "$dir"
  if image_exists "$image"; then
    log "$what: $image is in the daemon; saving its tarball"
  else
    log "$what: building $image"
    "$build_fn" "$tmp"
  fi
  "$docker_cmd" save -o "$tmp/image.tar" "$image"
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "$what: $image ready in $((SECONDS - started)) s ($(du -m "$dir/image.tar" | cut -f1) MB tarball)"
}

# ------------------------------------------------------------------- base image

# The first http(s)/file URI of an enabled apt source for $suite: deb822
# *.sources first (Debian's default since bookworm), then one-line *.list files.
apt_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" && -z "$uri" ]] || continue
    uri="$(awk -v suite="$suite" '
      function flush() {
        if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uri != "") { print uri; found = 1 }
        types = ""; suites = ""; uri = ""; enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = "" }
      key == "types" { types = $0 }
      key == "suites" { suites = $0; gsub(/^ +| +$/, "", suites) }
      key == "enabled" { enabled = tolower($2) }
      key == "uris" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { uri = $i; break } }
      END { flush() }' "$f")"
  done
  if [[ -z "$uri" ]]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -E 's/#.*//; s/\[[^]]*\]//' \
      | awk -v suite="$suite" '!found && $1 == "deb" && $3 == suite && $2 ~ /^(https?|file):/ { print $2; found = 1 }')"
  fi
  [[ -n "$uri" ]] && printf '%s\n' "$uri"
}

build_base() {  # build_base DIR: debootstrap, then rootfs.tar, then docker import
  local dir="$1" mirror mirror_from="the apt sources"
  command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps installs it)"
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
  [[ -r "$ca_bundle" ]] || die "no CA bundle at $ca_bundle (Debian's ca-certificates package builds it)"
  if [[ -n "${MODELROLLOUT_DEBIAN_MIRROR:-}" ]]; then
    mirror="$MODELROLLOUT_DEBIAN_MIRROR" mirror_from=MODELROLLOUT_DEBIAN_MIRROR
  else
    mirror="$(apt_mirror)" \
      || die "no apt source for $suite in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set MODELROLLOUT_DEBIAN_MIRROR"
  fi
  local tmp rootfs started=$SECONDS
  new_tmp "$dir"; rootfs="$tmp/rootfs"
  mkdir -p "$images_dir/debootstrap-debs"
  log "base: debootstrap --variant=minbase $suite from $mirror ($mirror_from; about a minute)"
  # --cache-dir: a rebuild (a new CA bundle) does not download the packages again.
  if ! debootstrap --variant=minbase --include="$base_include" --components=main \
      --cache-dir="$images_dir/debootstrap-debs" \
      "$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.out" 2>&1; then
    die "debootstrap of $suite from the mirror $mirror (from $mirror_from) failed:
$(tail -n 8 "$tmp/debootstrap.out")
$(tail -n 8 "$rootfs/debootstrap/debootstrap.log" 2>/dev/null)"
  fi
  log "base: debootstrap done in $((SECONDS - started)) s; $(chroot "$rootfs" python3 --version)"
  cp "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # What an image has no use for: the downloaded packages and apt's indexes.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap
  # /dev, /proc and /sys are the runtime's to fill.
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -C "$rootfs" -cf "$tmp/rootfs.tar" .
  rm -rf --one-file-system "$rootfs"
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
}

ensure_base() {
  local started=$SECONDS
  base_key="$(printf '%s\n' "$suite" minbase "$base_include" "$(sha256sum <"$ca_bundle")" \
    "$base_recipe" "$(dpkg --print-architecture)" | digest)"
  BASE_IMAGE="modelrollout.local/debian-python:$suite-$base_key"
  local dir="$images_dir/base-$base_key"
  if image_exists "$BASE_IMAGE"; then
    log "base: reused $BASE_IMAGE"
    return
  fi
  [[ -f "$dir/.complete" ]] || build_base "$dir"
  log "base: importing $dir/rootfs.tar as $BASE_IMAGE"
  # A docker import has no config: give it the PATH and locale the Dockerfile's
  # ENV PATH=...:$PATH and Python expect.
  "$docker_cmd" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$dir/rootfs.tar" "$BASE_IMAGE" >/dev/null
  log "base: $BASE_IMAGE ready in $((SECONDS - started)) s ($(du -m "$dir/rootfs.tar" | cut -f1) MB rootfs)"
}

# ------------------------------------------------------------------ pause image

build_pause() {
  local tmp="$1"
  command -v gcc >/dev/null || die "gcc is not installed (make deps installs gcc and libc6-dev)"
  gcc -static -Os -s -Wall -Wextra -Werror -o "$tmp/pause" "$here/pause.c" \
    || die "compiling $here/pause.c failed (a static binary needs libc6-dev's libc.a)"
  printf '%s\n' "$pause_dockerfile" >"$tmp/Dockerfile"
  docker_build "$tmp/build.log" --network=none -t "$PAUSE_IMAGE" "$tmp"
}

ensure_pause() {
  # 65535: the unprivileged user Kubernetes' own pause image runs as.
  pause_dockerfile='FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]'
  local key
  key="$(printf '%s\n' "$(sha256sum <"$here/pause.c")" "$(gcc --version | head -n 1)" \
    "$pause_dockerfile" "$pause_recipe" | digest)"
  PAUSE_IMAGE="modelrollout.local/pause:$key"
  pause_dir="$images_dir/pause-$key"
  ensure_saved pause "$PAUSE_IMAGE" "$pause_dir" build_pause
}

# ------------------------------------------------------------------- wheelhouse

# The pinned closures as cp311 x86_64 wheels: the images' pip never needs an index.
requirements=(docker/requirements-operator.txt docker/requirements-modelserver.txt)
# Every manylinux tag a bookworm glibc (2.36) runs, since pip matches them literally.
wheel_platforms=(manylinux1_x86_64 manylinux2010_x86_64 manylinux2014_x86_64)
for minor in $(seq 5 36); do wheel_platforms+=("manylinux_2_${minor}_x86_64"); done

ensure_wheelhouse() {
  local key
  key="$(cat "${requirements[@]/#/$repo/}" "$repo/constraints.txt" | sha256sum | cut -c1-12)"
  key="$(printf '%s\n' "$key" "${wheel_platforms[*]}" "$wheel_recipe" | digest)"
  wheelhouse_key="$key"
  wheelhouse="$images_dir/wheelhouse-$key"
  if [[ -f "$wheelhouse/.complete" ]]; then
    touch "$wheelhouse"
    log "wheelhouse: reused $wheelhouse ($(find "$wheelhouse" -name '*.whl' | wc -l) wheels)"
    return
  fi
  local pip_pin pip_venv tmp started=$SECONDS backend
  # A pip of its own, at the version constraints.txt pins: the host's pip (or
  # its absence) does not decide what is downloaded.
  pip_pin="$(grep -E '^pip==' "$repo/constraints.txt" || echo pip)"
  pip_venv="$images_dir/pip-${pip_pin#pip==}"
  if [[ ! -x "$pip_venv/bin/pip" ]]; then
    log "wheelhouse: a virtualenv with $pip_pin for the downloads ($pip_venv)"
    rm -rf "$pip_venv"
    python3 -m venv "$pip_venv" || die "python3 -m venv failed (install python3-venv)"
    "$pip_venv/bin/pip" install --quiet --disable-pip-version-check "$pip_pin" \
      || { rm -rf "$pip_venv"; die "installing $pip_pin from the package index failed"; }
  fi
  # The Dockerfile builds the project with the build backend constraints.txt pins.
  backend="$(grep -E '^(setuptools|wheel)==' "$repo/constraints.txt")"
  new_tmp "$wheelhouse"
  log "wheelhouse: downloading ${requirements[*]} and $(echo $backend) (cp311, manylinux x86_64)"
  local platform_args=() requirement_args=() r
  for p in "${wheel_platforms[@]}"; do platform_args+=(--platform "$p"); done
  # The operator's closure is a subset of the model server's, at the same pins.
  for r in "${requirements[@]}"; do requirement_args+=(-r "$repo/$r"); done
  # shellcheck disable=SC2086 # $backend: one requirement per word
  if ! env -u PIP_CONSTRAINT "$pip_venv/bin/pip" download --quiet --disable-pip-version-check \
      --dest "$tmp" --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
      "${platform_args[@]}" "${requirement_args[@]}" $backend; then
    die "pip download of the pinned closure failed (is the package index reachable? is every pin available as a cp311 manylinux x86_64 wheel?)"
  fi
  touch "$tmp/.complete"
  rm -rf "$wheelhouse"; mv "$tmp" "$wheelhouse"
  log "wheelhouse: $(find "$wheelhouse" -name '*.whl' | wc -l) wheels, $(du -sm "$wheelhouse" | cut -f1) MB, in $((SECONDS - started)) s"
}

# -------------------------------------------------------------- project images

# What the Dockerfile copies, as `docker build .` would send it (.dockerignore).
project_inputs() {
  (cd "$repo" && {
    printf '%s\n' Dockerfile .dockerignore pyproject.toml README.md constraints.txt "${requirements[@]}"
    find operator \( -name __pycache__ -o -name '*.egg-info' \) -prune -o -type f -print
  } | LC_ALL=C sort)
}

# A context of its own, not the worktree: a wheelhouse left in the repo would
# silently turn someone's plain `docker build .` offline, and stale. Made once,
# for both targets; build_project_context DIR.
build_project_context() {
  local context="$1"
  [[ -d "$context" ]] && return
  mkdir -p "$context/docker/wheelhouse"
  (cd "$repo" && project_inputs | tar -cf - -T -) | tar -C "$context" -xf -
  cp -l "$wheelhouse"/*.whl "$context/docker/wheelhouse/" 2>/dev/null \
    || cp "$wheelhouse"/*.whl "$context/docker/wheelhouse/"
}

# build_target TARGET IMAGE TMP: the Dockerfile's TARGET, tagged IMAGE. The second
# target takes the stages they share (the wheel, the base) from Docker's cache.
build_target() {
  local target="$1" image="$2" tmp="$3"
  build_project_context "$project_context"
  # --network=none: proves the install is offline, from the wheelhouse alone.
  docker_build "$tmp/build.log" --network=none --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
    --target "$target" -t "$image" "$project_context"
  local user
  user="$("$docker_cmd" image inspect -f '{{.Config.User}}' "$image")"
  [[ "$user" == 10001* ]] || die "$image runs as '$user', not uid 10001"
}
build_operator() { build_target operator "$OPERATOR_IMAGE" "$1"; }
build_modelserver() { build_target modelserver "$MODELSERVER_IMAGE" "$1"; }

# One key for both images (the same inputs); each its own tag, cache entry and
# tarball: modelrollout-operator:dev-<key> in operator-<key>/, modelrollout:dev-<key>
# (the model server, named as the examples' images are) in modelserver-<key>/.
ensure_projects() {
  local inputs key
  inputs="$(project_inputs)"
  key="$({ (cd "$repo" && tr '\n' '\0' <<<"$inputs" | xargs -0 sha256sum)
           printf '%s\n' "$BASE_IMAGE" "$wheelhouse_key" "$project_recipe"; } | digest)"
  OPERATOR_IMAGE="modelrollout-operator:dev-$key"
  MODELSERVER_IMAGE="modelrollout:dev-$key"
  operator_dir="$images_dir/operator-$key"
  modelserver_dir="$images_dir/modelserver-$key"
  project_context="$images_dir/context-$key.tmp.$$"
  tmp_dirs+=("$project_context")
  ensure_saved operator "$OPERATOR_IMAGE" "$operator_dir" build_operator
  ensure_saved modelserver "$MODELSERVER_IMAGE" "$modelserver_dir" build_modelserver
  rm -rf "$project_context"
}

# Keeps the newest $keep_project_images images of each kind (by last use) and
# their tarballs. Only this script's kinds: modelrollout-* entries are the
# one-image builds of older checkouts, theirs to prune.
prune_projects() {
  local kind current old image
  for kind in operator modelserver; do
    current="$operator_dir"; image=modelrollout-operator
    [[ $kind == modelserver ]] && current="$modelserver_dir" image=modelrollout
    while read -r old; do
      [[ -n "$old" && "$old" != "$current" ]] || continue
      log "pruning $(basename "$old") (keeping the newest $keep_project_images $kind images)"
      "$docker_cmd" rmi "$image:dev-${old##*/"$kind"-}" >/dev/null 2>&1 || true
      rm -rf "$old"
    done < <(find "$images_dir" -maxdepth 1 -type d -name "$kind-*" ! -name '*.tmp.*' -printf '%T@ %p\n' \
      | sort -rn | tail -n +"$((keep_project_images + 1))" | cut -d' ' -f2-)
  done
  # An env file naming a tarball that is gone would only mislead.
  local env tar
  for env in "$images_dir"/env/*.env; do
    [[ -f "$env" ]] || continue
    for tar in $(sed -n 's/^\(OPERATOR\|MODELSERVER\)_IMAGE_TAR=//p' "$env"); do
      [[ -f "$tar" ]] || { rm -f "$env"; break; }
    done
  done
}

# ------------------------------------------------------------------------- main

started=$SECONDS
ensure_base
ensure_pause
ensure_wheelhouse
ensure_projects
prune_projects

mkdir -p "$images_dir/env"
env_file="$images_dir/env/images-$(printf '%s\n' "$OPERATOR_IMAGE" "$MODELSERVER_IMAGE" "$PAUSE_IMAGE" "$BASE_IMAGE" | digest).env"
printf '%s\n' \
  "OPERATOR_IMAGE=$OPERATOR_IMAGE" \
  "OPERATOR_IMAGE_TAR=$operator_dir/image.tar" \
  "MODELSERVER_IMAGE=$MODELSERVER_IMAGE" \
  "MODELSERVER_IMAGE_TAR=$modelserver_dir/image.tar" \
  "PAUSE_IMAGE=$PAUSE_IMAGE" \
  "PAUSE_IMAGE_TAR=$pause_dir/image.tar" \
  "BASE_IMAGE=$BASE_IMAGE" >"$env_file.tmp.$$"
mv "$env_file.tmp.$$" "$env_file"
log "images ready in $((SECONDS - started)) s (docker: ${DOCKER_HOST:-default socket})"
printf '%s\n' "$env_file" >&3
