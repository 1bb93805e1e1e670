"""Model names -> local directories: a directory as is, a Hugging Face hub id through HF's cache layout.

The cache is the one transformers and huggingface_hub share, so a model any of them downloaded is found here
without the network:

    $HF_HUB_CACHE  (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
      models--{org}--{name}/refs/main            -> the commit hash of the snapshot `main` points to
      models--{org}--{name}/snapshots/<commit>/  -> the files (symlinks into blobs/ in real caches)

When the model is not cached, and neither HF_HUB_OFFLINE nor TRANSFORMERS_OFFLINE is set, huggingface_hub's
snapshot_download fetches it (the `hub` extra); without that package, or offline, the network is never touched.
"""

from __future__ import annotations

import os
import re

# Files that make a directory a loadable model / tokenizer (any one of each list suffices).
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
               "pytorch_model.bin.index.json", "tf_model.h5", "tf_model.h5.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
# Small files fetched along with the weights when downloading.
_METADATA_PATTERNS = ("*.json", "*.txt")

# "org/name" or "name": what the hub accepts (letters, digits, '-', '_', '.'; no '--' or '..').
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "on", "yes", "true"}


def hub_cache_dir() -> str:
    """The hub cache directory, as huggingface_hub computes it."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return os.path.expanduser(explicit)
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def is_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_repo_id(name: str) -> bool:
    return bool(_REPO_ID.match(name)) and "--" not in name and ".." not in name


def cached_snapshot(repo_id: str, filenames=None, revision: str | None = None) -> str | None:
    """The cached snapshot directory of repo_id at revision (default main) holding one of `filenames`, or None."""
    repo_dir = os.path.join(hub_cache_dir(), "models--" + repo_id.replace("/", "--"))
    snapshots = os.path.join(repo_dir, "snapshots")
    if not os.path.isdir(snapshots):
        return None
    revision = revision or "main"
    commit = None
    ref = os.path.join(repo_dir, "refs", revision)
    if os.path.isfile(ref):
        with open(ref, encoding="utf-8") as f:
            commit = f.read().strip()
    elif _COMMIT.match(revision):
        commit = revision
    if commit is None:
        return None
    candidate = os.path.join(snapshots, commit)
    if not os.path.isdir(candidate):
        return None
    if filenames and not any(os.path.exists(os.path.join(candidate, n)) for n in filenames):
        return None
    return candidate


def resolve_model_dir(name_or_path, filenames=None, *, revision: str | None = None, kind: str = "model") -> str:
    """A local directory for `name_or_path`: an existing directory as is; else a hub id ("org/name") from the
    HF cache, downloading it with huggingface_hub when allowed. `filenames`: the snapshot must hold at least one
    of them (None: any snapshot). Raises FileNotFoundError saying where it looked."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        return path
    if not looks_like_repo_id(path) or os.path.exists(path):
        raise FileNotFoundError(f"{kind} directory {path} does not exist (and it is not a hub id like 'org/name')")
    found = cached_snapshot(path, filenames, revision)
    if found is not None:
        return found
    cache = hub_cache_dir()
    wanted = f" holding one of {', '.join(filenames)}" if filenames else ""
    where = (f"{kind} {path!r} is neither a local directory nor a cached hub snapshot{wanted} (looked in "
             f"./{path} and {os.path.join(cache, 'models--' + path.replace('/', '--'))}, revision "
             f"{revision or 'main'})")
    if is_offline():
        raise FileNotFoundError(f"{where}; offline mode is on (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE), so the "
                                "hub was not asked")
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(f"{where}; to download it install the hub extra (pip install "
                                "'mobilebert-lite[hub]'), or pass a local model directory") from None
    patterns = (list(filenames) + list(_METADATA_PATTERNS)) if filenames else None
    try:
        return huggingface_hub.snapshot_download(path, revision=revision, allow_patterns=patterns)
    except Exception as exc:  # noqa: BLE001 - network, auth and not-found errors all mean "no model here"
        raise FileNotFoundError(f"{where}; downloading it from the hub failed: {exc}") from None
