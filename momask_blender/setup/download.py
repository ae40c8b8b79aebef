"""Download a file over HTTP(S) with progress, cancel, resume and verification, using urllib only.

Pure Python so that a worker thread can run it while Blender's UI stays live: the operator passes
`progress(done, total)` and a cancel flag (a `threading.Event` or any `() -> bool`). The bytes go to
`<name>.part` and are renamed to `<name>` only once the size and/or SHA-256 check out, so a
failed, cancelled or corrupt download never looks like a finished file. Google Drive's large-file
confirmation page (the one `gdown` clicks through for the official checkpoints) is handled by
`download_google_drive`.
"""
from __future__ import annotations

import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from html import unescape
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .assets import sha256_file

ProgressFn = Callable[[int, int | None], None]
CancelFlag = Callable[[], bool] | threading.Event | None

USER_AGENT = "momask-blender (urllib)"
DRIVE_URL = "https://drive.google.com"
_CHUNK = 1 << 16
_MAX_PAGE = 2 << 20  # a confirmation page is small; never read a large HTML body into memory


class DownloadError(Exception):
    """A download failed; the message says why in words a user can act on."""


class DownloadCancelled(DownloadError):
    """The cancel flag was raised."""


class WrongFileError(DownloadError):
    """The bytes arrived but are not the right ones (size or SHA-256): never kept, never retried."""


class _Retryable(DownloadError):
    """A transient failure (dropped connection, timeout, 5xx): worth another attempt."""


def is_cancelled(cancel: CancelFlag) -> bool:
    """Read a cancel flag that may be an Event, a callable or None."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def part_path(dest: Path) -> Path:
    """Where the bytes go until they are verified."""
    return dest.with_name(dest.name + ".part")


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    max_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFlag = None,
    timeout: float = 30.0,
    retries: int = 3,
    retry_wait: float = 1.0,
    keep_partial: bool = False,
    reject_html: bool = False,
    opener: urllib.request.OpenerDirector | None = None,
) -> Path:
    """Fetch `url` into `dest` and return `dest`; raise `DownloadError` with a clear reason.

    `size` is the exact size expected; `max_bytes` a cap when it is not known: a server that
    declares more, or keeps sending past it, is cut off and nothing is kept.

    `timeout` is how long the server may stay silent (connect or between reads). Dropped
    connections and timeouts are retried `retries` times, continuing with an HTTP Range request
    where the server answers 206; otherwise from the start. Unless `keep_partial`, nothing is left
    at `<dest>.part` after a failure (keep it to resume in a later call).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    opener = opener or urllib.request.build_opener()
    expected_hash = sha256.strip().lower() if sha256 else None
    if expected_hash and dest.is_file() and _sha256(dest, cancel) == expected_hash:
        return dest  # already here and verified: no network
    try:
        for attempt in range(retries + 1):
            try:
                _fetch_into(url, part, opener, size, progress, cancel, timeout, reject_html,
                            size if size is not None else max_bytes)
                break
            except _Retryable as exc:
                if attempt == retries:
                    raise DownloadError(f"{exc} (gave up after {attempt + 1} attempts)") from exc
                _sleep(retry_wait * (attempt + 1), cancel)
        _verify(part, url, size, expected_hash, cancel)
        os.replace(part, dest)
        return dest
    except BaseException as exc:
        keep = keep_partial and not isinstance(exc, WrongFileError)
        if not keep:
            _remove(part)
        raise


def _fetch_into(
    url: str,
    part: Path,
    opener: urllib.request.OpenerDirector,
    size: int | None,
    progress: ProgressFn | None,
    cancel: CancelFlag,
    timeout: float,
    reject_html: bool,
    cap: int | None = None,
) -> None:
    """One attempt: continue `part` from its current length where the server allows it."""
    if is_cancelled(cancel):
        raise DownloadCancelled("download cancelled")
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return  # complete already; verification decides
    if size is not None and offset > size:
        offset = 0  # longer than the file can be: start over
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # nothing left to send: the part is complete or wrong, verification decides
        raise _http_error(url, exc) from exc
    except TimeoutError as exc:
        raise _Retryable(_timeout_message(url, timeout)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Retryable(_timeout_message(url, timeout)) from exc
        raise _Retryable(f"could not reach {_host(url)}: {exc.reason}") from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        raise _Retryable(f"the connection to {_host(url)} failed: {exc}") from exc
    with resp:
        if reject_html and resp.headers.get_content_type() == "text/html":
            raise DownloadError(f"{_host(url)} sent a web page instead of the file: {url}")
        start = _resume_start(resp, offset)
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = start + remaining if remaining is not None else size
        if size is not None and total is not None and total != size:
            raise WrongFileError(
                f"wrong size: the server offers {total:,} bytes, expected {size:,} ({url})"
            )
        if cap is not None and total is not None and total > cap:
            raise WrongFileError(f"too large: the server offers {total:,} bytes, at most {cap:,} expected ({url})")
        _stream(resp, part, start, total, remaining, url, progress, cancel, timeout, cap)


def _resume_start(resp: http.client.HTTPResponse, offset: int) -> int:
    """Where the body starts: `offset` if the server honoured our Range (206), else 0."""
    if offset and resp.status == 206:
        match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
        raise _Retryable("the server resumed at an unexpected position")
    return 0


def _stream(
    resp: http.client.HTTPResponse,
    part: Path,
    start: int,
    total: int | None,
    remaining: int | None,
    url: str,
    progress: ProgressFn | None,
    cancel: CancelFlag,
    timeout: float,
    cap: int | None = None,
) -> None:
    """Copy the body into `part` (appending after `start`), reporting progress per chunk; stop with
    a WrongFileError once more than `cap` bytes arrived."""
    done = start
    with open(part, "r+b" if start else "wb") as fh:
        fh.seek(start)
        fh.truncate()
        if progress is not None:
            progress(done, total)
        while True:
            if is_cancelled(cancel):
                raise DownloadCancelled("download cancelled")
            try:
                chunk = resp.read(_CHUNK)
            except TimeoutError as exc:
                raise _Retryable(_timeout_message(url, timeout)) from exc
            except (http.client.IncompleteRead, ConnectionError, http.client.HTTPException) as exc:
                raise _Retryable(_interrupted_message(url, done, total)) from exc
            if not chunk:
                break
            if cap is not None and done + len(chunk) > cap:
                raise WrongFileError(f"too large: {_host(url)} kept sending past the {cap:,} bytes expected; "
                                     f"the download was stopped and discarded ({url})")
            fh.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if remaining is not None and done - start < remaining:
        raise _Retryable(_interrupted_message(url, done, total))


def _verify(part: Path, url: str, size: int | None, sha256: str | None, cancel: CancelFlag) -> None:
    """Raise `WrongFileError` unless the bytes in `part` have the expected size and hash."""
    got_size = part.stat().st_size if part.exists() else 0
    if size is not None and got_size != size:
        raise WrongFileError(f"wrong size: got {got_size:,} bytes, expected {size:,} ({url})")
    if sha256 is None:
        return
    got = _sha256(part, cancel)
    if got != sha256:
        raise WrongFileError(f"wrong SHA-256: got {got}, expected {sha256}; the file was discarded ({url})")


def _sha256(path: Path, cancel: CancelFlag) -> str:
    """The file's SHA-256 (assets' cached, cancellable hash), a cancel surfacing as DownloadCancelled."""
    try:
        return sha256_file(path, cancel=lambda: is_cancelled(cancel))
    except InterruptedError:
        raise DownloadCancelled("download cancelled") from None


def _http_error(url: str, exc: urllib.error.HTTPError) -> DownloadError:
    if exc.code == 404:
        return DownloadError(f"not found (HTTP 404): {url}")
    if exc.code in (401, 403):
        return DownloadError(f"access denied (HTTP {exc.code}) by {_host(url)}: {url}")
    if exc.code >= 500 or exc.code == 429:
        return _Retryable(f"{_host(url)} is busy or failing (HTTP {exc.code} {exc.reason})")
    return DownloadError(f"HTTP {exc.code} {exc.reason} from {_host(url)}: {url}")


def _timeout_message(url: str, timeout: float) -> str:
    return f"timed out: {_host(url)} sent nothing for {timeout:g} s (slow or stalled server)"


def _interrupted_message(url: str, done: int, total: int | None) -> str:
    of = f" of {total:,}" if total is not None else ""
    return f"interrupted: the connection to {_host(url)} closed after {done:,}{of} bytes"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _sleep(seconds: float, cancel: CancelFlag) -> None:
    """Wait between attempts, but wake up at once when cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_cancelled(cancel):
            raise DownloadCancelled("download cancelled")
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


# --- Google Drive -------------------------------------------------------------------------------

def drive_view_url(file_id: str) -> str:
    """The page a person opens in a browser to download the file by hand."""
    return f"{DRIVE_URL}/file/d/{file_id}/view"


def download_google_drive(
    file_id: str,
    dest: Path,
    *,
    base_url: str = DRIVE_URL,
    timeout: float = 30.0,
    **kwargs,
) -> Path:
    """Download a publicly shared Drive file, clicking through the large-file warning page.

    Drive answers files too big to virus-scan with an HTML page: older pages carry a `confirm`
    token (in a link, and a `download_warning*` cookie), newer ones a form that submits `id`,
    `export`, `confirm` and `uuid` to drive.usercontent.google.com. `kwargs` go to `download`.
    """
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"{base_url.rstrip('/')}/uc?export=download&id={file_id}"
    final = _resolve_drive(url, opener, jar, timeout, kwargs.get("cancel"))
    return download(final, dest, opener=opener, reject_html=True, timeout=timeout, **kwargs)


def _resolve_drive(
    url: str, opener: urllib.request.OpenerDirector, jar: CookieJar, timeout: float, cancel: CancelFlag
) -> str:
    """Follow confirmation pages until the URL serves the file itself."""
    for _ in range(3):
        if is_cancelled(cancel):
            raise DownloadCancelled("download cancelled")
        try:
            resp = opener.open(
                urllib.request.Request(url, headers={"User-Agent": USER_AGENT}), timeout=timeout
            )
        except urllib.error.HTTPError as exc:
            raise _as_final(_http_error(url, exc)) from exc
        except TimeoutError as exc:
            raise DownloadError(_timeout_message(url, timeout)) from exc
        except urllib.error.URLError as exc:
            raise DownloadError(f"could not reach {_host(url)}: {exc.reason}") from exc
        with resp:
            if resp.headers.get_content_type() != "text/html":
                return resp.geturl()
            page = resp.read(_MAX_PAGE).decode("utf-8", errors="replace")
            page_url = resp.geturl()
        cookies = {c.name: c.value for c in jar}
        nxt = drive_confirm_url(page, page_url, cookies)
        if nxt is None:
            raise DownloadError(drive_page_problem(page, url))
        url = nxt
    raise DownloadError(f"Google Drive kept asking for confirmation: {url}")


def _as_final(exc: DownloadError) -> DownloadError:
    return DownloadError(str(exc)) if isinstance(exc, _Retryable) else exc


class _FormParser(HTMLParser):
    """Collect each form's action and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str], list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((attr.get("action", ""), attr, []))
        elif tag == "input" and self.forms and attr.get("name"):
            self.forms[-1][2].append((attr["name"], attr.get("value", "")))


def drive_confirm_url(page: str, page_url: str, cookies: Mapping[str, str]) -> str | None:
    """The URL behind Drive's "download anyway" button, or None if the page has none."""
    parser = _FormParser()
    parser.feed(page)
    for action, attr, fields in parser.forms:
        if attr.get("id") == "download-form" or "download" in action:
            names = {name for name, _ in fields}
            if "id" in names and ("confirm" in names or "uuid" in names):
                return _with_query(urljoin(page_url, unescape(action)), fields)
    match = re.search(r'href="([^"]*confirm=[^"]*)"', page)
    if match:
        return urljoin(page_url, unescape(match.group(1)))
    token = next((v for k, v in cookies.items() if k.startswith("download_warning")), None)
    if token:
        query = [(k, v) for k, v in parse_qsl(urlsplit(page_url).query) if k != "confirm"]
        return _with_query(page_url, [*query, ("confirm", token)], replace=True)
    return None


def _with_query(url: str, fields: list[tuple[str, str]], *, replace: bool = False) -> str:
    parts = urlsplit(url)
    query = urlencode(fields) if replace or not parts.query else parts.query + "&" + urlencode(fields)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def drive_page_problem(page: str, url: str) -> str:
    """Turn a Drive page without a download button into advice."""
    text = page.lower()
    if "quota" in text or "too many users" in text:
        return (
            "Google Drive refuses the download for now (too many downloads of this file recently). "
            "Try again later, or download it in a browser and use Install from File."
        )
    if "sign in" in text or "access denied" in text or "request access" in text:
        return "Google Drive asks to sign in: the file is not public any more, or the link changed."
    return f"Google Drive answered with a web page instead of the file ({url})."
