"""Fetching the released weights into the user's cache, for the demo: first a quick look at
whether the hosts answer at all, then the installer's own downloads (progress, resume, SHA-256
where published).

The cache is `$XDG_CACHE_HOME/momask` (else `~/.cache/momask`), laid out like the add-on's user
folder: `checkpoints/t2m/...` and `clip/ViT-B-32.pt`. `MOMASK_NO_DOWNLOAD=1` turns downloading
off (the test suite sets it: no test reaches past the loopback address). Pure Python, no bpy.
"""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .assets import CLIP_SHA256, CLIP_URL, CLIP_URL_ORIGIN, HUMANML3D_ZIP_DRIVE_ID, Kind, all_present, check_assets
from .download import DRIVE_URL, USER_AGENT, DownloadError
from .install import download_clip, download_models

NO_DOWNLOAD = "MOMASK_NO_DOWNLOAD"
PROBE_SECONDS = 4.0   # how long the hosts may take to answer at all before we call ourselves offline


@dataclass(frozen=True)
class Sources:
    """Where the released files come from (tests point these at a loopback server)."""

    drive_url: str = DRIVE_URL
    models_file_id: str = HUMANML3D_ZIP_DRIVE_ID
    clip_urls: tuple[str, ...] = (CLIP_URL, CLIP_URL_ORIGIN)
    clip_sha256: str = CLIP_SHA256


RELEASED = Sources()


def user_cache(env: Mapping[str, str], home: Path) -> Path:
    """`$XDG_CACHE_HOME/momask`, or `~/.cache/momask` (the XDG default)."""
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path(home) / ".cache") / "momask"


def downloads_allowed(env: Mapping[str, str]) -> bool:
    """False when MOMASK_NO_DOWNLOAD is set to anything but '', 0, false or no."""
    return env.get(NO_DOWNLOAD, "").strip().lower() in ("", "0", "false", "no")


def probe(urls: Sequence[str], seconds: float = PROBE_SECONDS) -> dict[str, str | None]:
    """For each URL, None when its host answered an HTTP request (any status) within `seconds`,
    else why not. The requests run at once in daemon threads, so a hanging name lookup, which no
    socket timeout bounds, cannot hold the caller past the deadline."""
    answers: dict[str, str | None] = {}

    def ask(url: str) -> None:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        try:
            urllib.request.urlopen(request, timeout=seconds).close()
            answers[url] = None
        except urllib.error.HTTPError:
            answers[url] = None  # the host answered; what it said does not matter here
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            # the socket's own timeout and the deadline below are the same limit: one wording for both
            answers[url] = silent(url) if isinstance(reason, TimeoutError) else f"{url}: {reason}"

    def silent(url: str) -> str:
        return f"{url}: no answer within {seconds:g} s"

    threads = [threading.Thread(target=ask, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return {u: answers[u] if u in answers else silent(u) for u in urls}


def fetch_weights(root: Path, *, sources: Sources = RELEASED, probe_seconds: float = PROBE_SECONDS,
                  clip: Path | None = None, progress: Callable[[int, int | None], None] | None = None,
                  on_stage: Callable[[str], None] | None = None, **download_options) -> tuple[Path, Path]:
    """Download and install the released checkpoints (and OpenAI's ViT-B/32 unless `clip` names
    one already on disk) under `root`; returns (checkpoints folder, CLIP file). Raises
    `DownloadError` (offline, refused, wrong bytes) or `install.InstallError`; a partial download stays
    as `.part` so the next call resumes it, and checkpoints an earlier call installed are kept."""
    need_models = not all_present(s for s in check_assets(Path(root)) if s.asset.kind is not Kind.CLIP)
    models_url = f"{sources.drive_url.rstrip('/')}/uc?export=download&id={sources.models_file_id}"
    clip_urls = () if clip else sources.clip_urls
    answers = probe([models_url] * need_models + list(clip_urls), probe_seconds)
    problems = [answers[models_url]] if need_models and answers[models_url] else []
    if clip_urls and all(answers[u] for u in clip_urls):
        problems += [answers[u] for u in clip_urls]
    if problems:
        raise DownloadError("the download hosts do not answer (" + "; ".join(problems) + ")")
    options = dict(allow_online=True, progress=progress, on_stage=on_stage, keep_partial=True, **download_options)
    if need_models:
        download_models(root, drive_url=sources.drive_url, file_id=sources.models_file_id, **options)
    if clip is None:
        clip = download_clip(root, urls=sources.clip_urls, sha256=sources.clip_sha256, **options)
    return Path(root) / "checkpoints", Path(clip)
