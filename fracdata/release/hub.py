"""`--push REPO`: one commit to a Hugging Face Hub repository, with the user's own token.

Nothing uploads unless asked. The token is huggingface_hub's (HF_TOKEN, or `hf auth login`'s
stored one); without one the push stops before any request. HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1
(fracdata's tests and `make` set them) make huggingface_hub refuse every request: that too is one line, nothing sent.
HF_ENDPOINT points huggingface_hub elsewhere (a mirror, or the tests' local stand-in).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from fracdata.errors import FracdataError

# A run folder's files that are not the model: intermediate checkpoints, pickled training
# arguments (a pickle runs code when loaded), optimizer and RNG state, TensorBoard logs.
RUN_IGNORE = ("checkpoint-*", "runs", "*.bin", "optimizer.pt", "scheduler.pt", "rng_state*.pth", ".*")


def run_files(run: Path) -> dict[str, Path]:
    """{path in repo: file} of a run folder, without RUN_IGNORE (at any depth)."""
    out = {}
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run)
        if p.is_file() and not any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in RUN_IGNORE):
            out[rel.as_posix()] = p
    return out


def folder_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def ready(repo: str) -> str:
    """The user's token, before any work is done; one line when the push cannot happen."""
    from huggingface_hub import constants, get_token

    if repo.count("/") != 1 or any(not part.strip() for part in repo.split("/")):
        raise FracdataError(f"--push {repo!r}: a Hub repository is OWNER/NAME")
    token = get_token()
    if not token:
        raise FracdataError(f"--push {repo}: no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with "
                            "write access); nothing was written or uploaded")
    if constants.HF_HUB_OFFLINE:
        raise FracdataError(f"--push {repo}: {OFFLINE}; nothing was written or uploaded")
    return token


OFFLINE = "offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set), so huggingface_hub makes no request: unset it to upload"


def push(files: dict[str, Path], repo: str, repo_type: str, message: str, private: bool = False, log=print) -> str:
    """Create `repo` if needed and commit `files` to it in one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=ready(repo))
    try:
        api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=k, path_or_fileobj=str(v)) for k, v in sorted(files.items())]
        info = api.create_commit(repo, ops, commit_message=message, repo_type=repo_type)
    except OfflineModeIsEnabled:
        raise FracdataError(f"--push {repo}: {OFFLINE}; nothing was uploaded") from None
    except HfHubHTTPError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FracdataError(f"--push {repo}: the Hub refused: {first}") from None
    except OSError as e:  # no connection, DNS, a timeout: huggingface_hub's own messages
        raise FracdataError(f"--push {repo}: cannot reach the Hub ({type(e).__name__}: {e})") from None
    size = sum(p.stat().st_size for p in files.values())
    log(f"pushed {len(files)} files ({size / 2**20:.1f} MB) to the {repo_type} repo {repo}: {info.commit_url}")
    return info.commit_url
