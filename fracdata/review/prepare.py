"""Prepare a review folder: the images by id, the labelling view and the tasks file.

    gold    images from a manifest (all, --ids FILE, or a seeded --n), copied to DIR/images/<id>.<ext>
            so that DIR is the benchmark folder the gold JSONL lives in
    audit   the stratified sample of GPT labels (`fracdata audit sample`'s sampler, same seed,
            same images), images left where the manifest has them
    manual  every image file of a collected folder (and its manifest.jsonl, if any, for captions)

DIR gets review.json (the state), label_config.xml (Labeling Setup > Code) and tasks.json
(Import): each task's data holds the image, its caption, excerpts and source, and the image id
(`fracdata_id`) and review uid (`fracdata_review`) that import joins on. Images go into
tasks.json as data: URLs (one self-contained file for a server fracdata cannot reach), or as
`--image-url PREFIX` + the image path relative to DIR (a web server or Label Studio's local-files
storage serving that folder). Prepare refuses an image that is missing, unreadable or whose
bytes do not hash to its id, as a counted reject with the reason.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes
from fracdata.records import ManifestRecord, Reject, dump_jsonl, read_jsonl, sha256_file
from fracdata.review import config as cfg
from fracdata.review import state

STAGE = "review"
MANUAL_META = ("labels.jsonl", "manifest.jsonl")  # as the builder: every other file in a manual folder is an image
TASKS_WARN_BYTES = 200 << 20  # Label Studio refuses uploads over DATA_UPLOAD_MAX_MEMORY_SIZE, 250 MB by default


class Rejects:
    def __init__(self):
        self.items: list[Reject] = []

    def add(self, file, reason, detail, id=None, line=None):
        self.items.append(Reject(stage=STAGE, file=str(file), line=line, id=id, reason=reason, detail=detail))

    def counts(self) -> Counter:
        return Counter(r.reason for r in self.items)


def _check_image(path: Path, expected: str | None, file, line, rejects: Rejects) -> str | None:
    """The image's id (sha256 of its decoded pixels, as every stage names it) if it exists, matches
    its record's id (when given) and the builder would accept it (the same gate and bounds, so
    the same reasons; a damaged file is a reject, never a crash); else a reject and None."""
    from fracdata.images import ImageReject, load_normalised, pixel_id

    try:
        pid = pixel_id(load_normalised(path))
    except ImageReject as e:
        # no record id (a manual collection): the reject is named by the file's bytes, if it has any
        sha = sha256_file(path) if expected is None and path.is_file() and e.reason != "unreadable_image" else None
        rejects.add(file, e.reason, f"{path}: {e.detail}", id=expected or sha, line=line)
        return None
    if expected is not None and pid != expected:
        rejects.add(file, "id_mismatch", f"the pixels of {path} hash to {pid}, the record says {expected}",
                    id=expected, line=line)
        return None
    return pid


def display_image(path: Path) -> tuple[bytes, str]:
    """(bytes, MIME type) a browser shows with the pixels the labeller and the model see.

    The file itself when a browser draws it the same (8-bit L/RGB PNG, JPEG or WebP, upright);
    else the normalised PNG (TIFF, 16-bit, palette, alpha, an EXIF rotation: fracdata.images).
    A file that no longer opens (changed since the review was prepared) is one error naming it.
    """
    from PIL import Image

    from fracdata.images import ImageReject, encode_png, open_normalised

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            same = (im.format in ("PNG", "JPEG", "WEBP") and im.mode in ("L", "RGB")
                    and im.getexif().get(0x0112, 1) == 1 and "transparency" not in im.info)
            fmt = im.format
        if same:
            return data, f"image/{fmt.lower()}"
        return encode_png(open_normalised(io.BytesIO(data))), "image/png"
    except (OSError, ValueError, SyntaxError, EOFError, ImageReject) as e:  # PIL's header errors, the gate's
        raise FracdataError(f"{path}: cannot be shown ({type(e).__name__}: {e}); it changed since the review "
                            "was prepared: prepare it again") from None


def _resolve(manifest: Path, rec: ManifestRecord, lineno, rejects: Rejects) -> Path | None:
    """The image path, by the builder's rule: relative to the manifest and inside its folder."""
    from fracdata.files import resolve_image

    path, reason, detail = resolve_image(Path(os.path.abspath(manifest.parent)), rec.image)
    if path is None:
        rejects.add(manifest, reason, detail, id=rec.id, line=lineno)
    return path


def _manifest(path: Path, rejects: Rejects) -> dict[str, tuple[int, ManifestRecord]]:
    if not path.is_file():
        raise FracdataError(f"{path}: manifest not found")
    out = {}
    for lineno, rec in read_jsonl(path, ManifestRecord, STAGE):
        if isinstance(rec, Reject):
            rejects.items.append(rec)
        elif rec.id in out:
            rejects.add(path, "duplicate_id", f"id already named at line {out[rec.id][0]}", id=rec.id, line=lineno)
        else:
            out[rec.id] = (lineno, rec)
    return out


def _item(rec: ManifestRecord, image: str, **kw) -> state.Item:
    return state.Item(id=rec.id, image=image, caption=rec.caption, excerpts=list(rec.excerpts),
                      source=rec.source if rec.source.model_dump(exclude_none=True) else None, **kw)


def gold_items(manifest: Path, out: Path, ids_file: Path | None, n: int | None, seed: int, rejects: Rejects):
    records = _manifest(manifest, rejects)
    ids = sorted(records)
    if ids_file is not None:
        if not ids_file.is_file():
            raise FracdataError(f"{ids_file}: ids file not found")
        wanted = [t.strip() for t in ids_file.read_text(encoding="utf-8-sig").split() if t.strip()]
        unknown = [i for i in wanted if i not in records]
        if unknown:
            raise FracdataError(f"{ids_file}: {len(unknown)} ids are not in {manifest} (first {unknown[0][:12]})")
        ids = sorted(set(wanted))
    if n is not None:
        if n < 1:
            raise FracdataError("--n must be at least 1")
        ids = sorted(random.Random(seed).sample(ids, min(n, len(ids))))  # sorted ids + seed: same sample anywhere
    (out / "images").mkdir(parents=True, exist_ok=True)
    items = []
    for i in ids:
        lineno, rec = records[i]
        src = _resolve(manifest, rec, lineno, rejects)
        if src is None or _check_image(src, i, manifest, lineno, rejects) is None:
            continue
        dest = out / "images" / f"{i}{src.suffix.lower() or '.png'}"
        if not dest.is_file() or sha256_file(dest) != sha256_file(src):
            shutil.copyfile(src, dest)
        items.append(_item(rec, state.rel(dest, out)))
    return items


def audit_items(labels_path: Path, manifest: Path, out: Path, n: int, seed: int, taxonomy, rejects: Rejects):
    from fracdata.label.audit import draw_sample, read_sample_inputs

    labels, bad, images = read_sample_inputs(labels_path, manifest)
    rejects.items.extend(bad)
    chosen, strata, take = draw_sample(labels, n, seed, taxonomy)
    items = []
    for i in chosen:
        rec = images[i]
        src = _resolve(manifest, rec, None, rejects)
        if src is None or _check_image(src, i, manifest, None, rejects) is None:
            continue
        items.append(_item(rec, state.rel(src, out), gpt=[f for f in labels[i].features if f in taxonomy.by_id]))
    sample = {"n": n, "seed": seed, "strata": {k: [take[k], len(strata[k])] for k in sorted(strata)}}
    return items, sample


def suspect_items(labels_path: Path, manifest: Path, suspects_path: Path, out: Path, n: int, taxonomy,
                  rejects: Rejects):
    """The n images with the likeliest label errors, likeliest first (review/suspects.py)."""
    from fracdata.label.audit import read_sample_inputs
    from fracdata.review.suspects import rank_images

    labels, bad, images = read_sample_inputs(labels_path, manifest)
    rejects.items.extend(bad)
    ranked, sample = rank_images(suspects_path, labels, n, taxonomy)
    items = []
    for i, why in ranked:
        rec = images[i]
        src = _resolve(manifest, rec, None, rejects)
        if src is None or _check_image(src, i, manifest, None, rejects) is None:
            continue
        items.append(_item(rec, state.rel(src, out), gpt=[f for f in labels[i].features if f in taxonomy.by_id],
                           suspect=why))
    return items, sample


def manual_items(folder: Path, out: Path, rejects: Rejects):
    if not folder.is_dir():
        raise FracdataError(f"{folder}: manual collection folder not found")
    meta = {}
    if (folder / "manifest.jsonl").is_file():
        meta = {i: rec for i, (_, rec) in _manifest(folder / "manifest.jsonl", rejects).items()}
    items, seen = [], {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.parent == folder and name in MANUAL_META:
                continue
            pid = _check_image(path, None, path, None, rejects)
            if pid is None:
                continue
            if pid in seen:
                rejects.add(path, "duplicate_id", f"same pixels as {seen[pid]}", id=pid)
                continue
            seen[pid] = str(path)
            rec = meta.get(pid) or ManifestRecord(id=pid, image=name)
            items.append(_item(rec, state.rel(path, out)))
    return items


# -- tasks ---------------------------------------------------------------------------------------


def _source_text(item: state.Item) -> str:
    s = item.source
    if s is None:
        return ""
    fig = " ".join(x for x in (s.figure, f"panel {s.panel}" if s.panel else None) if x)
    parts = [s.title, s.journal, str(s.year) if s.year else None, f"doi:{s.doi}" if s.doi else None, fig or None,
             s.licence, s.url if not s.doi else None]
    return " · ".join(p for p in parts if p)


def data_url(path: Path) -> str:
    data, mime = display_image(path)
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def task(review: state.Review, item: state.Item, image: str, taxonomy) -> dict:
    data = {"image": image, "caption": item.caption, "excerpts": "\n\n".join(item.excerpts),
            "paper": _source_text(item), "fracdata_id": item.id, "fracdata_review": review.uid,
            "fracdata_kind": review.kind}
    if item.suspect is not None:
        data["suspect"] = item.suspect
    t = {"data": data}
    if review.show_gpt and item.gpt is not None:
        t["predictions"] = [cfg.prediction(item.gpt, taxonomy, "gpt")]
    return t


def image_ref(folder: Path, item: state.Item, image_url: str | None) -> str:
    if image_url is None:
        return data_url(folder / item.image)
    return image_url + quote(item.image)


def write_files(review: state.Review, folder: Path, taxonomy, image_url: str | None, rejects: Rejects) -> list[Path]:
    xml = cfg.label_config(taxonomy, review.kind, review.suspects is not None)
    atomic_write_bytes(folder / state.CONFIG, xml.encode())
    tasks = [task(review, it, image_ref(folder, it, image_url), taxonomy) for it in review.items]
    atomic_write_bytes(folder / state.TASKS, (json.dumps(tasks, ensure_ascii=False) + "\n").encode())
    written = [folder / state.CONFIG, folder / state.TASKS]
    if rejects.items:
        dump_jsonl(rejects.items, folder / "prepare.rejects.jsonl")
        written.append(folder / "prepare.rejects.jsonl")
    return written


def prepare(kind: str, out: Path, taxonomy, items: list[state.Item], rejects: Rejects, image_url: str | None,
            **kw) -> state.Review:
    if not items:
        raise FracdataError(f"{out}: no images to review ({sum(rejects.counts().values())} rejected: "
                            f"{dict(rejects.counts()) or 'none read'})")
    xml = cfg.label_config(taxonomy, kind, kw.get("suspects") is not None)
    review = state.new(kind, taxonomy, cfg.config_sha256(xml), items, **kw)
    written = write_files(review, out, taxonomy, image_url, rejects)
    state.save(review, out)
    size = (out / state.TASKS).stat().st_size
    counts = rejects.counts()
    print(f"wrote {out / state.STATE}: {kind} review of {len(items)} images, {sum(counts.values())} rejected"
          + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}; see {out / 'prepare.rejects.jsonl'})"
             if counts else ""))
    for p in written[:2]:
        print(f"wrote {p}" + (f": {len(items)} tasks, {size / 1e6:.1f} MB" if p.name == state.TASKS else ": the labelling view"))
    if size > TASKS_WARN_BYTES:
        print(f"note: {state.TASKS} is {size / 1e6:.0f} MB; Label Studio refuses uploads over 250 MB by default: "
              "use --image-url, or push through the API (fracdata review push)")
    return review
