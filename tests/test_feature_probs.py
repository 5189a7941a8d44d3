"""Every feature's score from the tiny Qwen3-VL (fracdata/inference/feature_probs.py): the cached,
batched computation equals a plain forward pass over each full text, chunking changes nothing,
and the answer's own features get the probability of the tokens that wrote them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from fracdata.answer import parse_answer, render_prompt
from fracdata.inference.feature_probs import end_tokens, feature_logprobs, slot_texts
from fracdata.taxonomy import load_taxonomy

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def lm(tiny_model):
    from fracdata.inference.local import LocalModel

    return LocalModel(Path(tiny_model), image_min_pixels=9216, max_new_tokens=8)


def test_each_feature_is_scored_after_the_listed_features_that_precede_it():
    slots = slot_texts(["mist", "dimple_shear", "wibble", "river_pattern"], TAX)
    assert list(slots) == TAX.ids
    assert slots["dimple_equiaxed"] == ("Features:", " dimple_equiaxed")  # before any listed one
    assert slots["dimple_shear"] == ("Features:", " dimple_shear")  # listed: scored where it was written
    assert slots["tts"] == ("Features: dimple_shear", ", tts")
    assert slots["mist"] == ("Features: dimple_shear, river_pattern", ", mist")  # taxonomy order, unknown ids ignored
    assert slots["fiber_pullout"] == ("Features: dimple_shear, river_pattern, mist", ", fiber_pullout")


def test_cached_batched_scores_equal_a_plain_forward_pass_per_feature(lm):
    import torch

    from fracdata.train.qwen import chat_text, lf_preprocess

    im = Image.new("RGB", (128, 96), (120, 30, 200))
    prompt = render_prompt()
    listed = ["dimple_shear", "river_pattern", "mist"]
    got = feature_logprobs(lm, im, prompt, listed, TAX)
    assert list(got) == TAX.ids and all(v <= 0 for v in got.values())
    chunked = feature_logprobs(lm, im, prompt, listed, TAX, max_cache_tokens=300)  # chunks of 1-2 continuations
    assert chunked == pytest.approx(got, abs=1e-4)  # float sums in another order: equal to ~1e-6
    ends = end_tokens(lm.processor.tokenizer, TAX, lm.eos)
    pixels = lf_preprocess(im, *lm.pixels)
    for f in ("dimple_equiaxed", "river_pattern", "mist", "fiber_pullout"):
        prefix, cont = slot_texts(listed, TAX)[f]
        full = lm.processor(text=[chat_text(prompt) + prefix + cont], images=[pixels], return_tensors="pt")
        head = lm.processor(text=[chat_text(prompt) + prefix], images=[pixels], return_tensors="pt")
        n0, ids = head["input_ids"].shape[1], full["input_ids"][0]
        with torch.inference_mode():
            lp = torch.log_softmax(lm.model(**full).logits[0].float(), -1)
        want = sum(float(lp[t - 1, ids[t]]) for t in range(n0, len(ids))) + float(torch.logsumexp(lp[-1, ends], 0))
        assert got[f] == pytest.approx(want, abs=1e-4)


def test_answers_carry_scores_once_asked_and_a_batch_scores_each_image_as_alone(lm):
    prompt = render_prompt()
    images = [Image.new("RGB", (128, 96), (20, 130, 200)), Image.new("RGB", (96, 160), (200, 30, 20))]
    assert lm.ask(images[0], prompt).feature_logprobs is None  # not asked: generation alone
    try:
        a, b = lm.score_features(TAX).generate(images, prompt, logprobs=True)  # left-padded: different sizes
    finally:
        lm.score_features(None)
    assert set(a.feature_logprobs) == set(TAX.ids) and a.record()["feature_logprobs"] == a.feature_logprobs
    # each image's rows cut from the batch's processor output give what the image alone gives
    for im, ans in ((images[0], a), (images[1], b)):
        alone = feature_logprobs(lm, im, prompt, parse_answer(ans.raw, TAX).labels, TAX)
        assert ans.feature_logprobs == pytest.approx(alone, abs=1e-4)
    # the random model's answer names nothing: every feature is scored at the first slot, so the
    # 53 scores are 53 outcomes of one next-item distribution and sum to at most 1
    assert sum(math.exp(v) for v in a.feature_logprobs.values()) <= 1 + 1e-6
