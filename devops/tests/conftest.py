"""Fixtures of the devops tests: the manifests, loaded once, and the upstream CRDs."""

from __future__ import annotations

from typing import Any

import pytest
from crdcheck import CustomResources
from devopslib import CRDS, all_documents, deployed_documents, in_ci, index


@pytest.fixture(scope="session")
def deployed() -> list[dict[str, Any]]:
    return deployed_documents()


@pytest.fixture(scope="session")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    return index(all_documents())


@pytest.fixture(scope="session")
def custom_resources() -> CustomResources:
    if not CRDS.is_dir():
        message = f"the upstream CRDs are not at {CRDS} (../shared/crds; CRDS_DIR overrides)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return CustomResources(CRDS)
