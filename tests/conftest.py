"""Shared fixtures. Tests never touch the network: hub access is switched off here."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):  # a developer's real key must never reach a test
    os.environ.pop(_key, None)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen3-VL built offline once per test session (fracdata tiny-model)."""
    from fracdata.train.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3vl"), seed=0)


@pytest.fixture(scope="session")
def synth_dataset(synth_small, tmp_path_factory):
    """The real path: fracdata synth (synth_small) -> fracdata build, once per session."""
    from fracdata.dataset.config import Inputs
    from fracdata.dataset.pipeline import build

    out = tmp_path_factory.mktemp("dataset") / "synthetic"
    build(Inputs(synth_small / "manifest.jsonl", [synth_small / "labels.jsonl"], synth_small / "manual",
                 [synth_small / "gold.jsonl"]), out, log=lambda *a: None)
    return out


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory):
    """A small synthetic corpus (fracdata synth): manifest, labels, manual/, gold."""
    from fracdata.synth.corpus import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, seed=0, n=120, n_gold=30, n_manual=12)
    return out
