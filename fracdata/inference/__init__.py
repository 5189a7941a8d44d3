"""One inference layer for `fracbench` and `fracdata analyze`: a model reads one image and a prompt.

  entry.py     model entries (models/*.yaml): the registry, `load_model`, and `open_model`, which
               turns an entry into a backend
  task.py      task files (tasks/*.yaml): the benchmark's prompt variants and answer format
  local.py     a local checkpoint: transformers + peft, the model's own processor, batched greedy
               generation, optional per-token log-probabilities, over training's exact inputs
               (fracdata/train/qwen.py: LlamaFactory's qwen3_vl_nothink markup and image resize)
  feature_probs.py  a local checkpoint's score for every taxonomy feature, named or not (two forwards)
  calibration.py    calibration.json beside a checkpoint: per-feature Platt maps from scores to probabilities
  endpoint.py  an OpenAI-compatible Chat Completions endpoint (vLLM, llamafactory-cli api, OpenAI,
               Gemini), with optional logprobs
  reply.py     `Answer`, what every backend returns

Every backend answers the same two calls, so callers never branch on the kind:
`ask(image, prompt, logprobs=False) -> Answer` for one image, and `answer(items, prompt)`, which
takes (id, image loader) pairs and yields (id, Answer) as answers arrive (local models in batches,
endpoints with requests in flight), so nothing is joined by position. torch, transformers and
openai are imported on first use.
"""

from fracdata.inference.entry import ModelEntry, load_model, open_model
from fracdata.inference.reply import Answer
from fracdata.inference.task import Task, load_task, prompt_text

__all__ = ["Answer", "ModelEntry", "Task", "load_model", "load_task", "open_model", "prompt_text"]
