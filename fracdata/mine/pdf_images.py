"""One PDF image, decoded only when the miner asks for it (fracdata/mine/pdf.py's loaders).

pypdf keeps the decoded stream of every image XObject it has read (`decoded_self`) for the life
of the reader: mining a thesis of full-resolution figures would hold every one of them. A loader
decodes its image, then drops that cache (and the soft mask's), so the miner holds one image's
pixels at a time whatever the page count (benchmarks/perf/mine_memory.py measures it).
"""

from __future__ import annotations


def raised_in_pypdf(e: BaseException) -> bool:
    """True when the innermost pypdf-or-fracdata frame of the traceback is pypdf's own code."""
    import traceback

    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if "/pypdf/" in frame.filename.replace("\\", "/"):
            return True
        if "/fracdata/" in frame.filename.replace("\\", "/"):
            return False
    return False


def image_loader(reader, pageno: int, key, name: str):
    """A callable decoding one image of a page when called (PIL image, or ImageReject
    `unreadable_image`), leaving no decoded copy in pypdf's caches."""
    def load():
        from fracdata.images import ImageReject

        page = None
        try:
            page = reader.pages[pageno - 1]
            im = page.images[key].image
            if im is None:  # pypdf logged that Pillow could not reopen what it decoded
                raise ValueError("pypdf could not turn the image stream into an image")
            im.load()  # decoded here, while the XObject is at hand; its cache is dropped below
            return im
        except Exception as e:  # JBIG2, broken streams: the image is counted, the paper goes on
            if not raised_in_pypdf(e) and not isinstance(e, (OSError, ValueError)):
                raise
            raise ImageReject("unreadable_image", f"{name}: {type(e).__name__}: {e}") from None
        finally:
            if page is not None:
                _forget(page, key)
    load.reader, load.page, load.key = reader, pageno, key  # what it decodes (shown, and checked in tests)
    return load


def _forget(page, key) -> None:
    """Drop the decoded stream pypdf keeps on an image XObject (and its soft mask) once read:
    pypdf caches it for the reader's life, one full decode per image of the document."""
    try:
        obj = page
        for part in (key if isinstance(key, list) else [key]):
            obj = obj["/Resources"].get_object()["/XObject"].get_object()[part].get_object()
        for stream in (obj, obj.get("/SMask")):
            stream = stream.get_object() if stream is not None else None
            if stream is not None and hasattr(stream, "decoded_self"):
                stream.decoded_self = None
    except Exception:  # noqa: BLE001  an inline image or an odd resource tree: nothing cached to drop
        pass
