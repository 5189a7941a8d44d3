"""An archive's per-article `.tar.gz` package (PMC's OA packages: `PMC123/article.nxml` plus
its figure files) -> Article, read in memory: nothing is extracted to disk, so a member named
`../../etc/x` or a link is never written or followed anywhere.

The package is one source: its sha256 covers the article and every figure in it. Members are
bounded (count and bytes) before anything is read, so a hostile archive is a counted
`corrupt_package`, never an exhausted machine.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from pathlib import Path

from fracdata.mine.article import Article
from fracdata.mine.jats import parse_jats
from fracdata.papers import SourceError, graphic_candidates

MAX_MEMBERS = 20_000  # PMC's largest packages hold a few hundred files (figures + supplements)
MAX_MEMBER_BYTES = 512 * 2**20  # 512 MiB: larger than any article figure; a bomb stops here
MAX_ARTICLE_BYTES = 64 * 2**20  # the .nxml itself; lxml refuses deeper trees anyway


def _members(tf: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    out = {}
    for i, m in enumerate(tf):
        if i >= MAX_MEMBERS:
            raise SourceError("corrupt_package", f"more than {MAX_MEMBERS} members")
        name = posixpath.normpath(m.name.lstrip("/"))
        if m.isfile() and not name.startswith(".."):
            out[name] = m
    return out


def parse_package(path: Path) -> Article:
    try:
        tf = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise SourceError("corrupt_package", f"{type(e).__name__}: {e}") from e
    with tf:
        try:
            members = _members(tf)
            nxml = sorted(n for n in members if n.lower().endswith(".nxml"))
            articles = nxml or sorted(n for n in members if n.lower().endswith(".xml"))
            if len(articles) != 1:
                raise SourceError("not_jats", f"{len(articles)} .nxml/.xml articles in the package; expected one"
                                  + (f" ({', '.join(articles[:5])})" if articles else ""))
            name = articles[0]
            if members[name].size > MAX_ARTICLE_BYTES:
                raise SourceError("corrupt_package", f"{name}: {members[name].size} bytes > {MAX_ARTICLE_BYTES}")
            data = tf.extractfile(members[name]).read()
            folder = posixpath.dirname(name)

            def resolve(href: str):
                for cand in graphic_candidates(href):
                    key = posixpath.normpath(posixpath.join(folder, cand))
                    m = members.get(key)
                    inside = key.startswith(f"{folder}/") if folder else not key.startswith("..")
                    if m is not None and inside:
                        if m.size > MAX_MEMBER_BYTES:
                            return None
                        return io.BytesIO(tf.extractfile(m).read())  # decoded later by the image gate
                return None

            art = parse_jats(Path(path.name) / name, data=data, resolve=resolve)
        except SourceError:
            raise
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:  # truncated or damaged mid-archive
            raise SourceError("corrupt_package", f"{type(e).__name__}: {e}") from e
    return art
