"""What LlamaFactory 0.9.5 feeds Qwen3-VL in training, so inference and the token budget see the same.

Chat markup: the `qwen3_vl_nothink` template, which has no default system prompt; a user turn is
    <|im_start|>user\\n{content}<|im_end|>\\n<|im_start|>assistant\\n
with `<image>` replaced by Qwen's vision tokens (the processor expands `<|image_pad|>`).

Image resize (Qwen2VLPlugin._preprocess_image, llamafactory/data/mm_plugin.py), in this order:
  1. area > image_max_pixels: scale both sides by sqrt(max / area), truncated to ints
  2. area < image_min_pixels: scale both sides by sqrt(min / area), truncated
  3. a side < 28 px: raise it to 28
  4. aspect > 200: width = 180 * height (and the transposed case)
e.g. 1000x900 with max 768*768: f = sqrt(589824 / 900000) = 0.8095 -> 809x728.
LlamaFactory converts to RGB after steps 1-2; the builder's images are 8-bit L or RGB, for which
resizing before or after the conversion gives the same pixels (bicubic acts per channel; a test
checks our pixels against LlamaFactory's own function).
"""

from __future__ import annotations

import math

USER, ASSISTANT, SYSTEM, END = "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_start|>system\n", "<|im_end|>\n"
USER_TURN = USER + "{content}" + END + ASSISTANT
VISION = "<|vision_start|><|image_pad|><|vision_end|>"
VISION_MARKERS = 2  # <|vision_start|> and <|vision_end|> around an image's tokens
MIN_SIDE, MAX_ASPECT, ASPECT_TO = 28, 200, 180


def chat_text(prompt: str) -> str:
    """The exact generation prompt LlamaFactory builds for one user turn (before token expansion)."""
    return USER_TURN.format(content=prompt.replace("<image>", VISION))


def resize_steps(width: int, height: int, max_pixels: int, min_pixels: int) -> list[tuple[int, int]]:
    """Every size LlamaFactory resizes a width x height image to, in order (see the module doc);
    [] when it keeps the image's size."""
    steps: list[tuple[int, int]] = []
    w, h = width, height
    if w * h > max_pixels:
        f = math.sqrt(max_pixels / (w * h))
        w, h = int(w * f), int(h * f)
        steps.append((w, h))
    if w * h < min_pixels:
        f = math.sqrt(min_pixels / (w * h))
        w, h = int(w * f), int(h * f)
        steps.append((w, h))
    if min(w, h) < MIN_SIDE:
        w, h = max(w, MIN_SIDE), max(h, MIN_SIDE)
        steps.append((w, h))
    if w / h > MAX_ASPECT:
        w = h * ASPECT_TO
        steps.append((w, h))
    if h / w > MAX_ASPECT:
        h = w * ASPECT_TO
        steps.append((w, h))
    return steps


def trained_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size training gives a width x height image (before the processor's own smart_resize)."""
    steps = resize_steps(width, height, max_pixels, min_pixels)
    return steps[-1] if steps else (width, height)


def lf_preprocess(image, max_pixels: int, min_pixels: int):
    """A PIL image as LlamaFactory's Qwen3-VL plugin hands it to the processor."""
    for size in resize_steps(image.width, image.height, max_pixels, min_pixels):
        image = image.resize(size)
    return image if image.mode == "RGB" else image.convert("RGB")
