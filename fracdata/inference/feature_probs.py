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

Cost: three forwards per batch of images: the prompts (with their images), each image's answer
written canonically on top, and every image's 53 continuations (", f": 2-4 tokens each), each
attending through the KV cache to its prompt and its slot's prefix of the answer (copied per
chunk of continuations; `max_cache_tokens` bounds the copies and the logits held). Measured per image on the tiny
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


def feature_logprobs(lm, image, prompt: str, listed: list[str], taxonomy,
                     max_cache_tokens: int = MAX_CACHE_TOKENS) -> dict[str, float]:
    """{feature id: log p_f} (module doc; natural log, kept as a log so that 1e-30 stays
    distinguishable from 1e-10) for one PIL image, as `lm` (a fracdata.inference.local.LocalModel)
    sees it: the same chat text, resize and processor as its generation."""
    from fracdata.train.qwen import chat_text, lf_preprocess

    enc = lm.processor(text=[chat_text(prompt)], images=[lf_preprocess(image, *lm.pixels)], return_tensors="pt")
    return batch_logprobs(lm, enc.to(lm.device), [listed], taxonomy, max_cache_tokens)[0]


def batch_logprobs(lm, enc, listed: list[list[str]], taxonomy,
                   max_cache_tokens: int = MAX_CACHE_TOKENS) -> list[dict[str, float]]:
    """feature_logprobs for every image of a batch, from the batch's own processor output `enc`
    (left-padded, as generation got it; listed[i]: image i's answer's features). Three forwards:
    the batch's prompts; each image's canonical answer on top (every slot's prefix is a prefix of
    it); then every image's 53 continuations (", f", 2-4 tokens each) in chunks, each attending to
    its image's prompt and to its slot's prefix of the answer only (the rest of the answer is
    masked out), through a copy of the KV cache."""
    import copy

    import torch

    tok = lm.processor.tokenizer
    dev = lm.device
    B, P = enc["input_ids"].shape
    order = {f: k for k, f in enumerate(taxonomy.ids)}
    answers, seqs = [], []  # seqs: (image, feature, slot prefix length in answer tokens, continuation tokens)
    for i, lab in enumerate(listed):
        named = sorted((f for f in set(lab) if f in order), key=order.__getitem__)
        ans = _encode(tok, PREFIX + (" " + ", ".join(named) if named else ""))
        answers.append(ans)
        for f, (prefix, cont) in slot_texts(lab, taxonomy).items():
            head, full = _encode(tok, prefix), _encode(tok, prefix + cont)
            if ans[:len(head)] != head or full[:len(head)] != head:  # Qwen's pre-tokenizer splits at " " and ","
                raise RuntimeError(f"internal: the tokenizer merges across the item boundary in {prefix + cont!r}")
            seqs.append((i, f, len(head), full[len(head):]))
    ends = torch.tensor(end_tokens(tok, taxonomy, lm.eos), device=dev)
    A = max(map(len, answers))
    L = max(len(c) for *_, c in seqs)
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    # KV copies (prompt + answer + continuation) and float32 logits (tokens x vocab) per chunk, bounded
    chunk = max(1, min(len(seqs), max_cache_tokens // (P + A + L), (1 << 27) // (L * vocab)))
    out: list[dict[str, float]] = [{} for _ in listed]
    real = enc["attention_mask"].sum(-1)  # real prompt tokens per image
    with torch.inference_mode():
        pre = lm.model(**enc, use_cache=True)
        delta = getattr(pre, "rope_deltas", None)
        shift = torch.zeros(B, dtype=torch.long, device=dev) if delta is None else delta.to(dev).reshape(B, -1)[:, 0]
        # Text positions continue after each prompt's real tokens, shifted by Qwen3-VL's rope delta
        # (an image's grid takes fewer positions than its tokens); right padding: no real token sees a pad.
        ans_ids = torch.zeros((B, A), dtype=torch.long, device=dev)
        ans_mask = torch.zeros((B, A), dtype=torch.long, device=dev)
        for i, a in enumerate(answers):
            ans_ids[i, :len(a)] = torch.tensor(a, device=dev)
            ans_mask[i, :len(a)] = 1
        pos = (real + shift)[:, None] + torch.arange(A, device=dev)[None, :]
        mid = lm.model(input_ids=ans_ids, attention_mask=torch.cat([enc["attention_mask"], ans_mask], 1),
                       position_ids=pos[None].expand(3, B, A), past_key_values=pre.past_key_values, use_cache=True)
        # the next-token distribution after each answer token (what follows each slot's prefix)
        after = torch.log_softmax(mid.logits.float(), -1)
        for c0 in range(0, len(seqs), chunk):
            part = seqs[c0:c0 + chunk]
            n = len(part)
            idx = torch.tensor([i for i, *_ in part], device=dev)
            head = torch.tensor([h for _, _, h, _ in part], device=dev)
            lens = torch.tensor([len(c) for *_, c in part], device=dev)
            ids = torch.zeros((n, L), dtype=torch.long, device=dev)
            for b, (*_, c) in enumerate(part):
                ids[b, :len(c)] = torch.tensor(c, device=dev)
            prefix = (torch.arange(A, device=dev)[None, :] < head[:, None]).long()  # the slot's part of the answer
            cont = (torch.arange(L, device=dev)[None, :] < lens[:, None]).long()
            mask = torch.cat([enc["attention_mask"][idx], prefix, cont], 1)
            pos = (real[idx] + shift[idx] + head)[:, None] + torch.arange(L, device=dev)[None, :]
            cache = copy.deepcopy(mid.past_key_values)
            cache.batch_select_indices(idx)
            logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos[None].expand(3, n, L),
                              past_key_values=cache, use_cache=True).logits.float()
            norm = torch.logsumexp(logits, -1)  # (n, L): log-softmax without holding it
            rng = torch.arange(n, device=dev)
            # continuation token 0 follows the slot's prefix (the answer pass), token t the one before it
            lp0 = after[idx, head - 1].gather(-1, ids[:, :1])
            lpt = logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] - norm[:, :-1]
            tok_lp = torch.cat([lp0, lpt], 1) * cont
            stop = torch.logsumexp(logits[rng, lens - 1][:, ends], -1) - norm[rng, lens - 1]  # the item ends there
            for (i, f, _, _), v in zip(part, (tok_lp.sum(1) + stop).tolist()):
                out[i][f] = round(min(v, 0.0), 6)
    return out
