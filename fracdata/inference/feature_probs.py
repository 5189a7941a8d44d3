"""A probability for every taxonomy feature from a local checkpoint, named in its answer or not.

The specialist answers `Features: a, b` with ids in taxonomy order (fracdata/templates/answer.j2).
For a feature f, let `before` be the features the model listed that come before f in taxonomy
order. The score is the probability that the model writes f as its next item after those:

    p_f = P(sep + f + end-of-item | image, prompt, "Features:" + ", ".join(before))

with sep = " " first, ", " after an item, and end-of-item = the next token being "," or the end
of the answer (so "mist" is not read off the start of a longer word). For a feature the model
listed this is the probability of the tokens that wrote it; for one it left out, the probability
it would have written it there instead of what it wrote (or instead of stopping). It is one
conditional, not the marginal P(the answer lists f) over all answers (that sums over every
path and is intractable); it is a score per feature, which `fracdata calibrate` maps to a
calibrated probability on the dataset's val split (fracdata/inference/calibration.py).
The listed features come from the parsed answer rendered canonically, so the score is defined
for any answer, an unparsed one included (then every feature is scored at the first slot).

Cost: one prefill of the prompt (with the image) and one batched forward of the 53
continuations, each a few tokens, attending to that prefill through the KV cache (copied per
chunk of continuations; `max_cache_tokens` bounds the copies). Measured per image on the tiny
model on CPU in benchmarks/perf/feature_probs.py. Other designs: a yes/no question per feature
asks the model something it was never trained on (and 53 prefills, or 53 suffixes); scoring
only the first slot after "Features:" gives late-taxonomy features almost no mass whenever an
earlier one is present; sampling answers costs N decodes for a 1/N resolution.
"""

from __future__ import annotations

from functools import lru_cache

from fracdata.answer import PREFIX

MAX_CACHE_TOKENS = 65536  # prompt tokens x continuations held in KV copies at once (chunking bound)


def slot_texts(listed: list[str], taxonomy) -> dict[str, tuple[str, str]]:
    """{feature: (answer prefix, continuation)} for every taxonomy feature, in taxonomy order.
    `listed` are the features the answer names (any order; unknown ids are ignored)."""
    order = {f: i for i, f in enumerate(taxonomy.ids)}
    named = sorted((f for f in set(listed) if f in order), key=order.__getitem__)
    out = {}
    for f in taxonomy.ids:
        before = [g for g in named if order[g] < order[f]]
        out[f] = (PREFIX + (" " + ", ".join(before) if before else ""), (", " if before else " ") + f)
    return out


@lru_cache(maxsize=8192)
def _encode(tokenizer, text: str) -> tuple[int, ...]:
    """Token ids of an answer text (memoised: the same prefixes recur on every image)."""
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def _common(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def end_tokens(tokenizer, taxonomy, eos: set[int]) -> list[int]:
    """Token ids that end an item: the separator "," as it follows an id, and the end of the answer."""
    f = taxonomy.ids[0]
    one, two = _encode(tokenizer, f), _encode(tokenizer, f + ", " + f)
    sep = two[_common(one, two)]
    return sorted({sep, *eos})


def one_image(enc, i: int) -> dict:
    """Image i's own part of a batch's processor output (left padding cut off; its pixel patches,
    image_grid_thw rows t*h*w each): what the processor gives that image alone."""
    grid = enc["image_grid_thw"]
    sizes = grid.prod(-1).tolist()
    start = sum(sizes[:i])
    keep = enc["attention_mask"][i].bool()
    return {"input_ids": enc["input_ids"][i:i + 1, keep], "attention_mask": enc["attention_mask"][i:i + 1, keep],
            "mm_token_type_ids": enc["mm_token_type_ids"][i:i + 1, keep],
            "pixel_values": enc["pixel_values"][start:start + sizes[i]], "image_grid_thw": grid[i:i + 1]}


def feature_logprobs(lm, image, prompt: str, listed: list[str], taxonomy,
                     max_cache_tokens: int = MAX_CACHE_TOKENS, enc: dict | None = None) -> dict[str, float]:
    """{feature id: log p_f} (module doc; natural log, kept as a log so that 1e-30 stays
    distinguishable from 1e-10) for one PIL image, as `lm` (a fracdata.inference.local.LocalModel)
    sees it: the same chat text, resize and processor as its generation (`enc`: that image's
    processor output already, `one_image` of a generated batch, and `image` unused)."""
    import copy

    import torch

    from fracdata.train.qwen import chat_text, lf_preprocess

    tok = lm.processor.tokenizer
    if enc is None:
        enc = lm.processor(text=[chat_text(prompt)], images=[lf_preprocess(image, *lm.pixels)], return_tensors="pt")
        enc = enc.to(lm.device)
    P = enc["input_ids"].shape[1]
    # Each continuation is the whole answer text up to and through f; scoring starts where its
    # tokens leave the prefix's (the boundary is a space or ", ", where Qwen's pre-tokenizer splits).
    seqs, starts, names = [], [], []
    for f, (prefix, cont) in slot_texts(listed, taxonomy).items():
        head, full = _encode(tok, prefix), _encode(tok, prefix + cont)
        seqs.append(full)
        starts.append(_common(head, full))
        names.append(f)
    ends = torch.tensor(end_tokens(tok, taxonomy, lm.eos), device=lm.device)
    L = max(map(len, seqs))
    chunk = max(1, min(len(seqs), max_cache_tokens // (P + L)))
    out: dict[str, float] = {}
    with torch.inference_mode():
        pre = lm.model(**enc, use_cache=True)
        first = torch.log_softmax(pre.logits[0, -1].float(), -1)  # the answer's first token
        delta = getattr(pre, "rope_deltas", None)
        for c0 in range(0, len(seqs), chunk):
            part = seqs[c0:c0 + chunk]
            B = len(part)
            ids = torch.full((B, L), tok.pad_token_id or 0, dtype=torch.long, device=lm.device)
            mask = torch.zeros((B, P + L), dtype=torch.long, device=lm.device)
            mask[:, :P] = 1
            for b, s in enumerate(part):
                ids[b, :len(s)] = torch.tensor(s, device=lm.device)
                mask[b, P:P + len(s)] = 1  # right padding: no real token attends to a pad
            # Text positions continue after the prompt; Qwen3-VL's multimodal RoPE shifts them by
            # the prefill's rope delta (the image's grid takes fewer positions than its tokens).
            pos = torch.arange(P, P + L, device=lm.device).view(1, 1, L).expand(3, B, L)
            if delta is not None:
                pos = pos + delta.to(lm.device).view(1, -1, 1)[:, :1]
            cache = copy.deepcopy(pre.past_key_values)
            cache.batch_repeat_interleave(B)
            logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                              use_cache=True).logits.float()
            lp = torch.log_softmax(logits, -1)
            for b, s in enumerate(part):
                k = starts[c0 + b]
                total = 0.0
                for t in range(k, len(s)):  # token t is predicted at t - 1 (token 0 by the prefill)
                    total += float(first[s[t]] if t == 0 else lp[b, t - 1, s[t]])
                total += float(torch.logsumexp(lp[b, len(s) - 1, ends], 0))  # the item ends there
                out[names[c0 + b]] = round(min(total, 0.0), 6)
    return out
