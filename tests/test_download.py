"""The downloader against a loopback HTTP server: every failure is named and leaves nothing behind."""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from momask_blender.setup import assets, fetch, install
from momask_blender.setup import download as dl

DATA = bytes(range(256)) * 800  # 204,800 bytes: several chunks
SHA = hashlib.sha256(DATA).hexdigest()
HALF = len(DATA) // 2


class _Handler(BaseHTTPRequestHandler):
    """Routes named after what they do wrong (or right)."""

    seen: list[tuple[str, str | None]] = []
    models_zip = b""
    hits: dict[str, int] = {}

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.seen.append((url.path, self.headers.get("Range")))
        self.hits[url.path] = self.hits.get(url.path, 0) + 1
        route = getattr(self, "route_" + url.path.strip("/").replace("/", "_").replace("-", "_"), None)
        if route is None:
            self.send_error(404)
            return
        route(query)

    def _send(self, body: bytes, status: int = 200, ctype: str = "application/octet-stream",
              headers: dict[str, str] | None = None, send: bytes | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body if send is None else send)
        self.wfile.flush()

    def _ranged(self, drop_first: bool) -> None:
        """Honour `Range: bytes=N-` with 206; optionally drop the first full request halfway."""
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            self._send(DATA[start:], 206, headers={
                "Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}", "Accept-Ranges": "bytes"})
        elif drop_first and self.hits[self.path.split("?")[0]] == 1:
            self._send(DATA, headers={"Accept-Ranges": "bytes"}, send=DATA[:HALF])
        else:
            self._send(DATA, headers={"Accept-Ranges": "bytes"})

    def route_good(self, q) -> None:
        self._ranged(drop_first=False)

    def route_resume(self, q) -> None:
        self._ranged(drop_first=True)

    def route_flaky_norange(self, q) -> None:
        """Drops the first time, ignores Range afterwards: the client must start over."""
        if self.hits["/flaky-norange"] == 1:
            self._send(DATA, send=DATA[:HALF])
        else:
            self._send(DATA)

    def route_drop(self, q) -> None:
        self._send(DATA, send=DATA[:HALF])

    def route_corrupt(self, q) -> None:
        self._send(DATA[:-1] + b"\x00")

    def route_short(self, q) -> None:
        self._send(DATA[:-10])

    def route_unsized(self, q) -> None:
        """No Content-Length: the size is only known once the connection closes."""
        self.send_response(200)
        self.end_headers()
        self.wfile.write(DATA[:-10])

    def route_slow(self, q) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(DATA[:1000])
        self.wfile.flush()
        time.sleep(1.5)

    def route_silent(self, q) -> None:
        time.sleep(1.5)

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name): the probe's question
        self.do_GET()

    def route_busy(self, q) -> None:
        self.send_error(503)

    def route_endless(self, q) -> None:
        """No Content-Length and no end: bytes until the client hangs up."""
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(DATA)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_oversized(self, q) -> None:
        self._send(DATA * 4)

    # Google Drive, the newer form on drive.usercontent.google.com.
    def route_drive_uc(self, q) -> None:
        port = self.server.server_address[1]
        page = f"""<html><body><p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="http://127.0.0.1:{port}/usercontent/download" method="get">
<input type="submit" value="Download anyway"/>
<input type="hidden" name="id" value="{q['id']}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-42"></form>
</body></html>""".encode()
        self._send(page, ctype="text/html; charset=utf-8")

    def route_usercontent_download(self, q) -> None:
        if q.get("confirm") == "t" and q.get("uuid") == "u-42" and q.get("id") == "MODELS":
            self._send(self.models_zip)
        elif q.get("confirm") == "t" and q.get("uuid") == "u-42" and q.get("id") == "FILE":
            self._ranged(drop_first=False)
        else:
            self._send(b"<html>confirm first</html>", ctype="text/html")

    # Google Drive, the older page: a confirm token in a link and a download_warning cookie.
    def route_olddrive_uc(self, q) -> None:
        if q.get("confirm") == "TOK" and self.headers.get("Cookie", "").find("download_warning_1=TOK") >= 0:
            self._ranged(drop_first=False)
            return
        page = (b'<html><a id="uc-download-link" href="/olddrive/uc?export=download&amp;confirm=TOK'
                b'&amp;id=FILE">Download anyway</a></html>')
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Set-Cookie", "download_warning_1=TOK; Path=/")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def route_quota_uc(self, q) -> None:
        self._send(b"<html>Too many users have viewed or downloaded this file recently.</html>",
                   ctype="text/html")


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.seen, _Handler.hits = [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_good_file_is_verified_and_renamed(server: str, tmp_path: Path) -> None:
    seen = []
    out = dl.download(f"{server}/good", tmp_path / "f.bin", sha256=SHA, size=len(DATA),
                      progress=lambda done, total: seen.append((done, total)))
    assert out.read_bytes() == DATA
    assert _leftovers(tmp_path) == ["f.bin"]
    assert seen[-1] == (len(DATA), len(DATA)) and len(seen) > 2
    requests = len(_Handler.seen)
    dl.download(f"{server}/good", tmp_path / "f.bin", sha256=SHA)  # verified already: no request
    assert len(_Handler.seen) == requests


def test_wrong_hash_is_discarded(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match="wrong SHA-256"):
        dl.download(f"{server}/corrupt", tmp_path / "f.bin", sha256=SHA, retry_wait=0)
    assert _leftovers(tmp_path) == []


def test_wrong_size_announced_by_the_server(server: str, tmp_path: Path) -> None:
    message = "wrong size: the server offers 204,790 bytes, expected 204,800"
    with pytest.raises(dl.DownloadError, match=message):
        dl.download(f"{server}/short", tmp_path / "f.bin", size=len(DATA), retry_wait=0)
    assert _leftovers(tmp_path) == []


def test_wrong_size_found_at_the_end(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match="wrong size: got 204,790 bytes, expected 204,800"):
        dl.download(f"{server}/unsized", tmp_path / "f.bin", size=len(DATA))
    assert _leftovers(tmp_path) == []


def test_404(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match=r"not found \(HTTP 404\)"):
        dl.download(f"{server}/nothing-here", tmp_path / "f.bin")
    assert _leftovers(tmp_path) == []
    assert len(_Handler.seen) == 1  # a 404 is not retried


def test_dropped_connection_without_resume_support(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match="interrupted: .* closed after 102,400 of 204,800 bytes"):
        dl.download(f"{server}/drop", tmp_path / "f.bin", retries=2, retry_wait=0)
    assert _leftovers(tmp_path) == []
    assert len(_Handler.seen) == 3


def test_slow_server_times_out(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match=r"timed out: .* sent nothing for 0.3 s"):
        dl.download(f"{server}/slow", tmp_path / "f.bin", timeout=0.3, retries=0)
    assert _leftovers(tmp_path) == []


def test_server_errors_are_retried_then_reported(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match=r"HTTP 503.*gave up after 2 attempts"):
        dl.download(f"{server}/busy", tmp_path / "f.bin", retries=1, retry_wait=0)
    assert _leftovers(tmp_path) == []


def test_resume_with_range_after_a_drop(server: str, tmp_path: Path) -> None:
    out = dl.download(f"{server}/resume", tmp_path / "f.bin", sha256=SHA, retry_wait=0)
    assert out.read_bytes() == DATA
    assert _Handler.seen == [("/resume", None), ("/resume", f"bytes={HALF}-")]
    assert _leftovers(tmp_path) == ["f.bin"]


def test_restart_when_the_server_ignores_range(server: str, tmp_path: Path) -> None:
    out = dl.download(f"{server}/flaky-norange", tmp_path / "f.bin", sha256=SHA, retry_wait=0)
    assert out.read_bytes() == DATA
    assert _Handler.seen[1] == ("/flaky-norange", f"bytes={HALF}-")


def test_keep_partial_then_resume_in_a_later_call(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(dl.DownloadError, match="interrupted"):
        dl.download(f"{server}/resume", dest, retries=0, keep_partial=True)
    assert dl.part_path(dest).stat().st_size == HALF and not dest.exists()
    dl.download(f"{server}/resume", dest, sha256=SHA)
    assert dest.read_bytes() == DATA and _leftovers(tmp_path) == ["f.bin"]


def test_cancel_leaves_nothing(server: str, tmp_path: Path) -> None:
    flag = threading.Event()
    with pytest.raises(dl.DownloadCancelled):
        dl.download(f"{server}/good", tmp_path / "f.bin", cancel=flag,
                    progress=lambda done, total: done > 0 and flag.set())
    assert _leftovers(tmp_path) == []


def test_google_drive_usercontent_form(server: str, tmp_path: Path) -> None:
    out = dl.download_google_drive("FILE", tmp_path / "m.zip", base_url=f"{server}/drive", sha256=SHA)
    assert out.read_bytes() == DATA
    assert [p for p, _ in _Handler.seen][:2] == ["/drive/uc", "/usercontent/download"]


def test_google_drive_old_confirm_token_and_cookie(server: str, tmp_path: Path) -> None:
    out = dl.download_google_drive("FILE", tmp_path / "m.zip", base_url=f"{server}/olddrive", size=len(DATA))
    assert out.read_bytes() == DATA


def test_google_drive_quota_page_is_explained(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match="Google Drive refuses the download for now"):
        dl.download_google_drive("FILE", tmp_path / "m.zip", base_url=f"{server}/quota")
    assert _leftovers(tmp_path) == []


def test_confirm_url_from_the_newer_form() -> None:
    page = ('<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="hidden" name="id" value="ABC"><input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t">'
            '<input type="hidden" name="uuid" value="9f"></form>')
    url = dl.drive_confirm_url(page, "https://drive.google.com/uc?export=download&id=ABC", {})
    assert url == "https://drive.usercontent.google.com/download?id=ABC&export=download&confirm=t&uuid=9f"


def test_models_zip_from_drive_is_installed(server: str, tmp_path: Path) -> None:
    from .test_install_files import make_zip, release_files

    _Handler.models_zip = make_zip(tmp_path / "src.zip", release_files()).read_bytes()
    root = tmp_path / "user"
    stages: list[str] = []
    installed = install.download_models(root, allow_online=True, drive_url=f"{server}/drive",
                                              file_id="MODELS", on_stage=stages.append)
    assert [p.name for p in installed] == list(assets.release_folders())
    assert stages == ["Downloading humanml3d_models.zip", "Unpacking humanml3d_models.zip"]
    assert sorted(p.name for p in root.iterdir()) == ["checkpoints"]


def test_clip_download_is_verified(server: str, tmp_path: Path) -> None:
    urls = (f"{server}/nothing-here", f"{server}/good")  # the CDN gone: the origin answers
    out = install.download_clip(tmp_path, allow_online=True, urls=urls, sha256=SHA)
    assert out == tmp_path / assets.CLIP_REL and out.read_bytes() == DATA
    with pytest.raises(dl.DownloadError, match="wrong SHA-256"):
        install.download_clip(tmp_path / "b", allow_online=True, sha256=SHA,
                                    urls=(f"{server}/corrupt", f"{server}/good"))
    assert not (tmp_path / "b" / "clip" / "ViT-B-32.pt").exists()
    assert list((tmp_path / "b" / "clip").iterdir()) == []


def test_offline_downloads_explain_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match="Allow Online Access") as info:
        install.download_models(tmp_path, allow_online=False)
    assert assets.HUMANML3D_ZIP_DRIVE_ID in str(info.value) and assets.CLIP_SHA256 in str(info.value)
    with pytest.raises(dl.DownloadError, match="Allow Online Access"):
        install.download_clip(tmp_path, allow_online=False)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- the demo's fetch


def _sources(server: str, clip_route: str = "good") -> fetch.Sources:
    return fetch.Sources(drive_url=f"{server}/drive", models_file_id="MODELS",
                         clip_urls=(f"{server}/{clip_route}",), clip_sha256=SHA)


def test_cache_and_switch_are_read_from_the_environment(tmp_path: Path) -> None:
    assert fetch.user_cache({}, tmp_path) == tmp_path / ".cache" / "momask"
    assert fetch.user_cache({"XDG_CACHE_HOME": str(tmp_path / "x")}, Path("/nowhere")) == tmp_path / "x" / "momask"
    assert fetch.downloads_allowed({}) and fetch.downloads_allowed({"MOMASK_NO_DOWNLOAD": "0"})
    assert not fetch.downloads_allowed({"MOMASK_NO_DOWNLOAD": "1"})
    assert not fetch.downloads_allowed({"MOMASK_NO_DOWNLOAD": "yes"})


def test_fetch_installs_the_release_and_clip_into_the_cache(server: str, tmp_path: Path) -> None:
    from .test_install_files import make_zip, release_files

    _Handler.models_zip = make_zip(tmp_path / "src.zip", release_files()).read_bytes()
    stages: list[str] = []
    checkpoints, clip = fetch.fetch_weights(tmp_path / "cache", sources=_sources(server), on_stage=stages.append)
    assert checkpoints == tmp_path / "cache" / "checkpoints" and clip.read_bytes() == DATA
    assert all(s.status != assets.MISSING for s in assets.check_assets(tmp_path / "cache"))
    assert stages == ["Downloading humanml3d_models.zip", "Unpacking humanml3d_models.zip", "Downloading ViT-B-32.pt"]
    assert ("/good", None) in _Handler.seen  # the CLIP file itself, not only the probe's HEAD


def test_fetch_finds_out_it_is_offline_within_the_probe_time(server: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing listening: refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(dl.DownloadError, match="do not answer") as refused:
        fetch.fetch_weights(tmp_path / "a", sources=_sources(closed), probe_seconds=2)
    # the refusal itself is the answer: the probe did not wait out its 2 s
    assert "refused" in str(refused.value) and "no answer within" not in str(refused.value)
    # a host that accepts but never answers: the probe gives up, naming its limit
    with pytest.raises(dl.DownloadError, match="no answer within 0.5 s"):
        fetch.fetch_weights(tmp_path / "b", sources=_sources(server, "silent"), probe_seconds=0.5)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written


def test_demo_downloads_when_nothing_is_found_and_not_when_told_not_to(server: str, tmp_path: Path,
                                                                         monkeypatch) -> None:
    import argparse

    from momask_blender import demo

    from .test_install_files import make_zip, release_files

    _Handler.models_zip = make_zip(tmp_path / "src.zip", release_files()).read_bytes()
    monkeypatch.setattr(demo, "ROOT", tmp_path / "checkout")  # nothing beside it: no ../shared, no ../checkpoints
    monkeypatch.setattr(demo, "RANDOM_CACHE", tmp_path / "random")
    monkeypatch.setattr(demo, "make_random_weights", lambda: "random weights")
    args = argparse.Namespace(random_weights=False, checkpoints=None, clip=None)
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert demo.choose_weights(args, [], {**env, "MOMASK_NO_DOWNLOAD": "1"}, tmp_path, _sources(server)) \
        == "random weights"
    assert _Handler.seen == [] and not (tmp_path / "xdg").exists()   # no request at all
    assert demo.choose_weights(args, [], env, tmp_path, _sources(server, "nothing-here")) == "random weights"
    zips = sum(p == "/usercontent/download" for p, _ in _Handler.seen)
    got = demo.choose_weights(args, [], env, tmp_path, _sources(server))   # the models stayed: only CLIP now
    assert got.origin == "downloaded" and got.checkpoints == tmp_path / "xdg" / "momask" / "checkpoints"
    assert got.clip == tmp_path / "xdg" / "momask" / "clip" / "ViT-B-32.pt" and got.clip.read_bytes() == DATA
    assert zips > 0 and sum(p == "/usercontent/download" for p, _ in _Handler.seen) == zips


def test_an_endless_stream_is_cut_at_the_cap_and_discarded(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.WrongFileError, match="kept sending past the 500,000 bytes"):
        dl.download(f"{server}/endless", tmp_path / "f.bin", max_bytes=500_000, retry_wait=0)
    assert _leftovers(tmp_path) == []


def test_a_declared_size_past_the_cap_is_refused_before_reading(server: str, tmp_path: Path) -> None:
    with pytest.raises(dl.WrongFileError, match="offers 819,200 bytes, at most 500,000"):
        dl.download(f"{server}/oversized", tmp_path / "f.bin", max_bytes=500_000)
    assert _leftovers(tmp_path) == []


def test_the_clip_download_is_capped(server: str, tmp_path: Path, monkeypatch) -> None:
    """An endless answer where ViT-B-32.pt should be: stopped at the cap (about 354 MB for the real file)."""
    assert install.CLIP_MAX_BYTES == assets.CLIP_MAX_BYTES < 500_000_000
    monkeypatch.setattr(install, "CLIP_MAX_BYTES", 300_000)
    with pytest.raises(dl.WrongFileError, match="kept sending past"):
        install.download_clip(tmp_path, allow_online=True, urls=(f"{server}/endless",), sha256=SHA,
                                    retry_wait=0)
    assert _leftovers(tmp_path / "clip") == []
