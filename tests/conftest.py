"""Shared fixtures: the real third-party data in ../shared (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
DATASETS = SHARED / "datasets"
SHARED_NETS = ["mnist-net_256x2", "mnist_relu_9_200", "resnet_2b", "cifar10_small"]


def model_path(name: str) -> Path:
    p = MODELS / f"{name}.onnx"
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


@pytest.fixture(params=SHARED_NETS)
def shared_net(request: pytest.FixtureRequest) -> Path:
    """Each of the four VNN-COMP nets in ../shared/models."""
    return model_path(request.param)


@pytest.fixture
def mnist_csv() -> Path:
    return DATASETS / "eran_mnist_test.csv"


@pytest.fixture
def cifar_csv() -> Path:
    return DATASETS / "eran_cifar10_test.csv"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's training tests: on 2 shared cores, two threads only fight."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
