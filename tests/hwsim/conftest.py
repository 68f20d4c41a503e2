"""Fixtures of the hwsim tests; the model builders are :mod:`tests.hwsim.models`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hwsim.tables import load_table_file
from tests.hwsim.models import TOPOLOGIES, TOY_TABLE, TOY_TABLE_SCALED, random_lenet, random_resnet20


@pytest.fixture
def topologies():
    """Folder of the shipped topology CSVs."""
    return TOPOLOGIES


@pytest.fixture
def int_models():
    """The random integer-model builders (``lenet(rng, requant)``, ``resnet20(rng)``)."""
    return SimpleNamespace(lenet=random_lenet, resnet20=random_resnet20)


@pytest.fixture
def lenet_model():
    seed = 1234
    print(f"random LeNet seed {seed}")
    return random_lenet(np.random.default_rng(seed))


@pytest.fixture(scope="module")
def resnet_model():
    seed = 2020
    print(f"random ResNet-20 seed {seed}")
    return random_resnet20(np.random.default_rng(seed))


@pytest.fixture
def toy(tmp_path):
    """:data:`tests.hwsim.models.TOY_TABLE`, loaded."""
    p = tmp_path / "toy.toml"
    p.write_text(TOY_TABLE)
    return load_table_file(p)


@pytest.fixture
def toy_scaled(tmp_path):
    """:data:`tests.hwsim.models.TOY_TABLE_SCALED`, loaded."""
    p = tmp_path / "toy_scaled.toml"
    p.write_text(TOY_TABLE_SCALED)
    return load_table_file(p)
