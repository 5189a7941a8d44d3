"""Read a YAML file that must hold a mapping; every failure is one line naming the file."""

from __future__ import annotations

from pathlib import Path

from fracdata.errors import FracdataError


def load_mapping(path: str | Path, kind: str, text: str | None = None) -> dict:
    """The mapping in `path` (or in `text`, read from `path` elsewhere), else FracdataError.

    `kind` names what the file should be ("recipe", "task", "price table", ...) in the message.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text() if text is None else text)
    except OSError as e:
        raise FracdataError(f"{path}: cannot read the {kind} file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise FracdataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FracdataError(f"{path}: a {kind} file must be a YAML mapping")
    return data
