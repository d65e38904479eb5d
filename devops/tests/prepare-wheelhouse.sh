#!/usr/bin/env bash
# Fill a wheelhouse (default .venv/wheelhouse) with what the backend image's builder stage
# downloads: the build backend of backend/pyproject.toml and every runtime dependency. With it,
# test_images.py builds and installs the backend wheel offline, the way the Dockerfile does
# online. Needs the package index; run it before the tests (make devops-test does).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-$root/.venv/wheelhouse}"
python="${WHEELHOUSE_PYTHON:-$root/.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build from a copy, as the Dockerfile does, so that no build/ folder lands in backend/.
cp "$root/backend/pyproject.toml" "$work/"
cp -r "$root/backend/src" "$work/src"
rm -rf "$work"/src/*.egg-info
mapfile -t build_requires < <("$python" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as handle:
    print("\n".join(tomllib.load(handle)["build-system"]["requires"]))
' "$root/backend/pyproject.toml")
mkdir -p "$dest"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$dest" "${build_requires[@]}"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$dest" "$work"
