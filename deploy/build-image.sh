#!/bin/sh
# Build the Dockyard image offline: the base from Debian packages (build-base.sh), the Python
# dependencies as wheels on the host (where pip already reaches PyPI with the host's settings),
# then `docker build` with PIP_NO_INDEX=1 so the build containers need no network.
#
# Usage: deploy/build-image.sh [IMAGE]   (default dockyard:dev; DOCKER_HOST is honoured,
# PYTHON picks the interpreter whose pip downloads the wheels)
set -eu

IMAGE=${1:-dockyard:dev}
BASE=${DOCKYARD_BASE_IMAGE:-dockyard-base:bookworm}
PYTHON=${PYTHON:-python3}
# The engine here has no buildx; the classic builder is what CI exercises.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
cd "$(dirname "$0")/.."

sh deploy/build-base.sh "$BASE"

requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$PYTHON" - >"$requirements" <<'PY'
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
for line in project["project"]["dependencies"] + project["build-system"]["requires"]:
    print(line)
PY
"$PYTHON" -m pip wheel --quiet --wheel-dir deploy/wheels -r "$requirements"

docker build --quiet --build-arg PIP_NO_INDEX=1 --build-arg BASE="$BASE" -f deploy/Dockerfile -t "$IMAGE" .
echo "build-image: $IMAGE ready"
