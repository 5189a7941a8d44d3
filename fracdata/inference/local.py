"""A local checkpoint: transformers (+ peft for adapters) with the model's own processor.

Why not LlamaFactory's ChatModel: with transformers 5.6 it does not pass `mm_token_type_ids`,
so Qwen3-VL silently falls back to text positions for image tokens (../shared/docs/llamafactory.md).
We build exactly what training saw instead (fracdata.train.qwen): the `qwen3_vl_nothink` user
turn around the prompt and LlamaFactory's resize; the processor expands the image tokens and
must return `mm_token_type_ids`, which we assert. Decoding is greedy; batches are left-padded
(checked equal to one-by-one in the tests). Large-scale scoring does not run here: serve the
checkpoint with `vllm serve` and use the endpoint (docs/bench.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.inference.reply import Answer
from fracdata.train.qwen import chat_text, lf_preprocess

ENGINE = "transformers"  # recorded in model identities (fracbench's cache keys carry it)


def local_folder(ref: str, what: str, model: str) -> Path:
    """A checkpoint folder, or a hub id resolved from the local Hugging Face cache (never downloaded)."""
    p = Path(ref).expanduser()
    if p.is_dir():
        return p.resolve()
    if p.exists():
        raise FracdataError(f"model {model}: {what} {ref} is a file, not a checkpoint folder")
    if ref.count("/") == 1 and not ref.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(ref, local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss means "not in the local cache"
            pass
    fix = {"path": f"--model-path {model}=PATH", "adapter": f"--adapter {model}=PATH"}.get(what, "the entry's variable")
    raise FracdataError(f"model {model}: {what} {ref} not found (build or train it first, or set {fix})")


def gpu_present() -> bool:
    """A cheap probe (no torch import, so cached re-scoring stays fast): an NVIDIA GPU is visible."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def resolved_runtime(dtype: str = "auto", fused_patch_embed: bool = True) -> dict:
    """engine/device/dtype/patch embedding a local model will really use (part of its identity):
    the GPU when one is visible; dtype `auto` = bfloat16 on GPU, float32 on CPU; the patch
    embedding fused into one matmul or the Conv3d as written (fracdata/train/fusion.py)."""
    gpu = gpu_present()
    return {"engine": ENGINE, "device": "cuda" if gpu else "cpu",
            "dtype": dtype if dtype != "auto" else ("bfloat16" if gpu else "float32"),
            "patch_embed": "fused" if fused_patch_embed else "conv3d"}


def processor_dir(path: Path, adapter: Path | None) -> Path:
    """The model's own processor: the adapter folder's when training saved one there, else the base's."""
    if adapter is not None and any((adapter / f).is_file() for f in ("processor_config.json", "preprocessor_config.json")):
        return adapter
    return path


class LocalModel:
    """One loaded checkpoint. `name` opens its error messages (e.g. "model tiny-ft"); `max_new_tokens`
    bounds every answer; `answer` generates `batch_size` images together."""

    LOGPROB_SOURCE = "local-generate-scores"  # the raw generation logits, log-softmaxed

    def __init__(self, path: Path, adapter: Path | None = None, device: str = "cpu", dtype: str = "float32",
                 image_max_pixels: int = 768 * 768, image_min_pixels: int = 32 * 32, name: str = "model",
                 max_new_tokens: int = 64, batch_size: int = 8, fused_patch_embed: bool = True):
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        from fracdata.train.fusion import from_pretrained_kwargs

        if device == "cuda" and not torch.cuda.is_available():
            raise FracdataError(f"{name}: a GPU is visible but torch cannot use it: set `dtype` and "
                                "CUDA_VISIBLE_DEVICES=-1 for CPU")
        t0 = time.time()
        self.name, self.path, self.adapter, self.device, self.dtype = name, path, adapter, device, dtype
        self.pixels = (image_max_pixels, image_min_pixels)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.feature_taxonomy = None  # score_features
        self.where = str(path)  # what answered: the checkpoint folder
        self.processor = AutoProcessor.from_pretrained(processor_dir(path, adapter))
        self.processor.tokenizer.padding_side = "left"  # generation continues from the right edge
        fusion = from_pretrained_kwargs(fused_patch_embed, AutoConfig.from_pretrained(path).model_type, name)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype), **fusion)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self.model = model.to(device).eval()
        embed = next((m for n, m in self.model.named_modules() if n.endswith("patch_embed")), None)
        self.fused = embed is not None and type(embed).__name__.startswith("Fused")  # what really loaded
        eos = self.model.generation_config.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        self.load_s = time.time() - t0

    def describe(self) -> str:
        return f"{ENGINE}, {self.device}, {self.dtype}" + (", fused patch embedding" if self.fused else "")

    def score_features(self, taxonomy) -> "LocalModel":
        """From now on every answer also carries every taxonomy feature's score (`feature_logprobs`,
        fracdata/inference/feature_probs.py), its time included in `latency_s`; None stops it."""
        self.feature_taxonomy = taxonomy
        return self

    def ask(self, image, prompt: str, logprobs: bool = False) -> Answer:
        """One greedy answer for one PIL image (the call every backend has)."""
        return self.generate([image], prompt, logprobs)[0]

    def generate(self, images: list, prompt: str, logprobs: bool = False) -> list[Answer]:
        """Greedy answers for PIL images, one batch; with `logprobs`, each answer's token pieces and
        their log-probabilities (raw logits, log-softmaxed: the model's own probabilities); after
        `score_features`, every feature's score."""
        import torch

        batch = [lf_preprocess(im, *self.pixels) for im in images]
        enc = self.processor(text=[chat_text(prompt)] * len(batch), images=batch, return_tensors="pt", padding=True)
        if "mm_token_type_ids" not in enc:  # without it Qwen3-VL mis-positions image tokens
            raise FracdataError(f"{self.name}: its processor returned no mm_token_type_ids; "
                                "upgrade transformers (>= 5.6) or use the checkpoint's own processor")
        enc = enc.to(self.device)
        t0 = time.time()
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, temperature=None,
                                      top_p=None, top_k=None, output_logits=logprobs, return_dict_in_generate=True)
        per = round((time.time() - t0) / len(batch), 4)  # the batch is generated together
        answers = []
        for i, row in enumerate(out.sequences[:, enc["input_ids"].shape[1]:].tolist()):
            # Generated tokens up to and including the first EOS; what follows is padding.
            n = next((k + 1 for k, tok in enumerate(row) if tok in self.eos), len(row))
            a = Answer(raw=self.processor.tokenizer.decode(row[:n], skip_special_tokens=True).strip(), latency_s=per,
                       usage={"prompt_tokens": int(enc["attention_mask"][i].sum()), "completion_tokens": n})
            if logprobs:
                a.logprobs = [float(torch.log_softmax(step[i].float(), -1)[tok]) for step, tok in zip(out.logits, row[:n])]
                a.tokens = self._pieces(row[:n])
            answers.append(a)
        taxonomy = self.feature_taxonomy
        if taxonomy is not None:
            from fracdata.answer import parse_answer
            from fracdata.inference.feature_probs import batch_logprobs

            t1 = time.time()
            scores = batch_logprobs(self, enc, [parse_answer(a.raw, taxonomy).labels for a in answers], taxonomy)
            for a, sc in zip(answers, scores):
                a.feature_logprobs = sc
            per = round(per + (time.time() - t1) / len(answers), 4)
            for a in answers:
                a.latency_s = per
        return answers

    def _pieces(self, ids: list[int]) -> list[str]:
        """Token texts by decoding growing prefixes: byte-level BPE pieces are not valid text alone."""
        pieces, prev = [], ""
        for k in range(1, len(ids) + 1):
            text = self.processor.tokenizer.decode(ids[:k], skip_special_tokens=True)
            pieces.append(text[len(prev):] if text.startswith(prev) else "")
            prev = text
        return pieces

    def answer(self, items, prompt: str, log=print):
        """Yield (id, Answer) for (id, image loader) pairs, one batch of `batch_size` at a time."""
        items = list(items)
        for start in range(0, len(items), self.batch_size):
            chunk = items[start:start + self.batch_size]
            answers = self.generate([load() for _, load in chunk], prompt)
            yield from zip((iid for iid, _ in chunk), answers)
            log(f"  {self.name}: {start + len(chunk)}/{len(items)} images ({answers[0].latency_s:.3f} s/image)")
