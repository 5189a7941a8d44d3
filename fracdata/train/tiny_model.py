"""`fracdata tiny-model OUT`: a tiny, randomly initialised Qwen3-VL built fully offline.

It has Qwen3-VL's real architecture, processor, special tokens and chat template at toy widths,
so the whole pipeline (LlamaFactory training with template `qwen3_vl_nothink`, merging, serving,
benchmarking) runs on a laptop CPU in seconds. Its weights are random: it is for tests and the
demo only, never a fractography model.

Sizes (seed 0; ~0.6M parameters, of which the vision patch embedding is the largest part):
  text    hidden 64, 2 layers, 4 heads of 16 (2 KV heads), MLP 128, vocab padded to a multiple of 64
  vision  hidden 64, depth 2, patch 16, temporal patch 2, spatial merge 2 -> one LM token per
          32x32 pixels, exactly as the real Qwen3-VL (so image-token arithmetic carries over)
The tokenizer is a byte-level BPE trained here with the `tokenizers` library on fracdata's own
prompt/answer texts and taxonomy, with Qwen's 26 special tokens appended in Qwen's order.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError

# Qwen2.5/Qwen3 added tokens, in Qwen's id order (151643..151668 in the real vocabulary).
# The flag says whether Qwen marks the token `special` (skipped when decoding).
QWEN_ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True),
    ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]
BPE_VOCAB = 998  # 256 byte symbols + merges; + 26 added tokens = 1024 ids when the corpus allows
HIDDEN = 64

README = """# tiny-qwen3vl (random weights)

A tiny, **randomly initialised** Qwen3-VL built offline by `fracdata tiny-model` (seed {seed}).
It has Qwen3-VL's architecture, processor, special tokens and chat template at toy widths
({params:,} parameters; text hidden 64 x 2 layers, vision hidden 64 x 2 blocks, patch 16,
spatial merge 2), and a byte-level BPE ({vocab} tokens) trained on fracdata's prompt, answer
and taxonomy texts.

It knows nothing. It exists so that tests and `fracdata demo` can run the real pipeline
(LlamaFactory training with template `qwen3_vl_nothink`, LoRA merge, benchmark) on a CPU.
Never report a score from it as a model result.
"""


def _corpus() -> list[str]:
    """Texts the BPE is trained on: the exact prompt, answers for every id, names, synonyms."""
    from fracdata.answer import render_answer, render_prompt
    from fracdata.taxonomy import load_taxonomy

    tax = load_taxonomy()
    lines = [render_prompt(), render_answer([])]
    # every id alone and next to its neighbour, so "Features: a, b" merges into few tokens
    for i, fid in enumerate(tax.ids):
        lines.append(render_answer([fid]))
        lines.append(render_answer([fid, tax.ids[(i + 1) % len(tax.ids)]]))
    for f in tax.features:
        lines += [f.name, f.visual, ", ".join(f.synonyms)]
    lines += ["system", "user", "assistant", "You are a helpful assistant.",
              "fractograph fracture surface SEM image scale bar micrometre"]
    # Repeat so that whole answers are frequent enough to become merges.
    return lines * 8


def _train_tokenizer():
    """Byte-level BPE with Qwen2Tokenizer's normaliser and pre-tokeniser, then Qwen's added tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    # Added tokens follow the BPE ids in Qwen's order, so their relative order matches Qwen's.
    for token, _ in QWEN_ADDED_TOKENS:
        vocab[token] = len(vocab)
    from tokenizers import AddedToken

    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None,
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=[t for t, special in QWEN_ADDED_TOKENS if special and t not in
                                   ("<|endoftext|>", "<|im_end|>")],
        model_max_length=8192, clean_up_tokenization_spaces=False, split_special_tokens=False,
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, special in QWEN_ADDED_TOKENS
                    if not special])
    for token, _ in QWEN_ADDED_TOKENS:  # fail loudly if an id moved
        if tok.convert_tokens_to_ids(token) != vocab[token]:
            raise RuntimeError(f"tiny tokenizer: {token} got id {tok.convert_tokens_to_ids(token)}, want {vocab[token]}")
    return tok, vocab


def _config(vocab: dict[str, int]):
    from transformers import Qwen3VLConfig

    padded = -(-len(vocab) // 64) * 64  # Qwen pads its embedding rows too (151,669 -> 151,936)
    return Qwen3VLConfig(
        text_config=dict(
            vocab_size=padded, hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=8192,
            rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                             # 3-D rotary split (t, h, w) of head_dim/2 = 8 frequencies
                             "mrope_section": [4, 2, 2], "mrope_interleaved": True},
            rms_norm_eps=1e-6, tie_word_embeddings=False, dtype="float32",
            bos_token_id=None, eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=2, hidden_size=HIDDEN, intermediate_size=128, num_heads=4, patch_size=16,
            spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=HIDDEN,
            # 16x16 learned position grid, bilinearly interpolated to any image size
            num_position_embeddings=256, deepstack_visual_indexes=[0],
        ),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
        tie_word_embeddings=False, dtype="float32",
    )


QWEN_MIN_PIXELS = 65536  # Qwen3-VL's processor minimum: 256x256 px, so never fewer than 64 visual tokens


def _processor(tok, min_pixels: int = QWEN_MIN_PIXELS):
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    # Qwen3-VL's own preprocessor values: 16-pixel patches, merge 2, mean/std 0.5, and pixel
    # bounds 256*256 .. 4096*4096 (so an image never yields fewer than 64 LM tokens). `min_pixels`
    # lowers the bound for small images (the demo: 96-128 px images keep their 9-16 tokens).
    image = Qwen2VLImageProcessor(
        size={"shortest_edge": min_pixels, "longest_edge": 16777216}, patch_size=16, temporal_patch_size=2,
        merge_size=2, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    video = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2,
                                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    chat = resources.files("fracdata").joinpath("templates", "qwen3_vl_chat.j2").read_text()
    return Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video, chat_template=chat)


def build_tiny_model(out: Path, seed: int = 0, min_pixels: int = QWEN_MIN_PIXELS) -> Path:
    """Write a loadable tiny random Qwen3-VL into `out` and return `out`. Deterministic by seed."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok, vocab = _train_tokenizer()
    config = _config(vocab)
    from fracdata.train.fusion import built_as_written

    torch.manual_seed(seed)
    with built_as_written():  # the same seed gives the same bytes in any process (fusion.py)
        model = Qwen3VLForConditionalGeneration(config).to(torch.float32).eval()
    # Greedy by default: a random model sampled would make tests and demo output irreproducible.
    model.generation_config = GenerationConfig(
        eos_token_id=[vocab["<|im_end|>"], vocab["<|endoftext|>"]], pad_token_id=vocab["<|endoftext|>"],
        do_sample=False, max_new_tokens=32,
    )
    model.save_pretrained(out)
    _processor(tok, min_pixels).save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    (out / "README.md").write_text(README.format(seed=seed, params=params, vocab=len(tok)))
    return out


def count_parameters(model_dir: Path) -> int:
    """Parameters stored in a saved model's safetensors files (read from headers; no model built)."""
    import math

    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(f, "pt") as st:
            total += sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())
    return total


def add_arguments(parser) -> None:
    parser.add_argument("out", type=Path, help="output folder (e.g. models/tiny-qwen3vl)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    parser.add_argument("--min-pixels", type=int, default=QWEN_MIN_PIXELS,
                        help=f"processor's smallest image area in px (default {QWEN_MIN_PIXELS} = Qwen3-VL's 256x256: "
                             "smaller images are upscaled to 64 visual tokens); the demo passes 9216 (96x96)")


def run(args) -> int:
    import time

    t0 = time.time()
    if args.min_pixels < 32 * 32:
        raise FracdataError(f"--min-pixels {args.min_pixels}: must be at least 1024 (one 32x32 px visual token)")
    out = build_tiny_model(args.out, seed=args.seed, min_pixels=args.min_pixels)
    files = sorted(p.name for p in out.iterdir())
    size = sum(p.stat().st_size for p in out.iterdir())
    params = count_parameters(out)
    print(f"wrote {out}/ ({len(files)} files, {size / 1e6:.1f} MB, {params:,} parameters, random weights, "
          f"seed {args.seed}) in {time.time() - t0:.1f} s: {', '.join(files)}")
    return 0
