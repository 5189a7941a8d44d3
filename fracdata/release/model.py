"""`fracdata release model RUN`: write RUN/README.md, the run's model card (model_card.py), checked
by huggingface_hub's own ModelCard parser before it is written.

The licence: `--licence ID` (a Hub licence id); else the base model's own card's licence (a local
base folder's README.md, or the card in the local Hugging Face cache; nothing is downloaded);
else `other`, said on the card and printed.
"""

from __future__ import annotations

from pathlib import Path

from fracdata.errors import FracdataError


def _card_licence(base: str) -> tuple[str | None, str | None]:
    """(licence, where it was read) from the base model's card, if one is here."""
    from huggingface_hub import ModelCard

    path = Path(base) / "README.md"  # tiny-model's card has no YAML: no licence
    if not path.is_file() and base.count("/") == 1:
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(base, "README.md", local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the local cache: no licence from there
            return None, None
    if not path.is_file() or not path.read_text(encoding="utf-8", errors="replace").startswith("---"):
        return None, None  # a card without a YAML block states no licence
    try:
        lic = ModelCard.load(path, ignore_metadata_errors=True).data.license
    except Exception:  # noqa: BLE001 - a card without YAML, or unreadable: it states no licence
        return None, None
    return (lic if isinstance(lic, str) else None), str(path)


def licence_of(given: str | None, base: str, facts) -> tuple[str, str]:
    """(Hub licence id, the card's sentence about it)."""
    data = ""
    if facts.build and facts.build.get("licences"):
        data = " The training images' licences are listed under Training data; their terms travel with the data."
    if given:
        return given, f"`{given}`, as stated by whoever released it (`--licence`).{data}"
    lic, where = _card_licence(base)
    if lic:
        return lic, f"`{lic}`, the base model's licence (read from its card, `{where}`).{data}"
    return "other", ("Not stated: no `--licence` was given and the base model's card names none here. The base model's "
                     f"terms and the training data's apply; the releaser should state one (`--licence`).{data}")


def release_model(run: Path, *, metrics: Path | None = None, bench_model: str | None = None, out: Path | None = None,
                  licence: str | None = None, base: str | None = None, dataset_repo: str | None = None,
                  name: str | None = None, log=print) -> Path:
    from huggingface_hub import ModelCard

    from fracdata.files import atomic_write_bytes
    from fracdata.release.model_card import base_model, render
    from fracdata.release.run_facts import read_metrics, read_run

    if bench_model and metrics is None:
        raise FracdataError("--bench-model goes with --metrics (fracbench's metrics.json)")
    facts = read_run(run)
    if metrics is not None:
        read_metrics(facts, metrics, bench_model)
    trained, hub_base = base_model(facts, base)
    lic, note = licence_of(licence, trained, facts)
    name = name or run.resolve().name
    text = render(facts, licence=lic, licence_note=note, model_name=name, hub_base=hub_base, trained_base=trained,
                  dataset_repo=dataset_repo)
    card = ModelCard(text)  # the Hub's parser: YAML and model-index must read back, or this raises
    if card.data.license != lic:
        raise RuntimeError(f"internal: the model card's YAML reads back licence {card.data.license!r}, not {lic!r}")
    target = out or run / "README.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, text.encode("utf-8"))
    n = len(card.data.eval_results or [])
    log(f"wrote {target}: model card of {name} (library {card.data.library_name}, base "
        f"{hub_base or trained + ' (local)'}, licence {lic}, {n} fracbench metrics"
        + (f" of {facts.bench_model}" if facts.bench_model else ", none: no --metrics") + f", {len(facts.figures)} figures "
        f"each with its file and key)")
    if lic == "other" and not licence:
        log("warning: no licence stated (no --licence, none on the base model's card): the card says `other`")
    return target
