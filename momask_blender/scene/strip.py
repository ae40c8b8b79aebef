"""A PNG strip of a skeleton's poses over time, drawn with NumPy alone (no PIL, no bpy).

    rgb = render_strip(points, segments, kinds, labels=[...], title="...")
    write_png("strip.png", rgb)

`points` are world positions (frames, N, 3) in Blender's axes (Z up, the character facing -Y at
the start); `segments` are (i, j) index pairs drawn as thick anti-aliased lines, `kinds` say
which side of the body each one is on (left limbs blue, right limbs red, the trunk dark), so a
reader can tell the legs apart. Each column is one frame, seen from the side (top row) and from
the front (bottom row), on a floor line whose ticks are fixed in the world: they slide under a
figure that travels.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CENTER, LEFT, RIGHT = 0, 1, 2
BACKGROUND = (250, 250, 247)
INK = (40, 42, 48)
FLOOR = (150, 150, 150)
WARNING = (200, 30, 30)
COLOURS = {CENTER: (45, 48, 60), LEFT: (35, 95, 205), RIGHT: (215, 70, 35)}
VIEWS = ("side", "front")
HEIGHT_FILL = 0.78     # the tallest pose fills this share of a panel's height
FLOOR_MARGIN = 22      # pixels from a panel's bottom to the floor line
UP = np.array([0.0, 0.0, 1.0])


def view_axes(view: str, travel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Screen-right and depth (away from the viewer) axes of a view, for a figure heading `travel`.

    From the side, the figure walks to the right; from the front, it faces the viewer.
    """
    d = np.asarray(travel, np.float64)
    if view == "side":
        return d, np.cross(UP, d)
    if view == "front":
        return np.cross(-d, UP), -d
    raise ValueError(f"unknown view {view!r}: use one of {VIEWS}")


def body_facing(points: np.ndarray, left: Sequence[int], right: Sequence[int]) -> np.ndarray:
    """Per-frame horizontal forward directions (F, 3) from left/right point pairs (hips, shoulders):
    forward = (left - right) x up, the way a Blender character facing -Y has its left on +X."""
    pts = np.asarray(points, np.float64)
    across = (pts[:, list(left)] - pts[:, list(right)]).sum(1)
    fwd = np.cross(across, UP)
    fwd[:, 2] = 0.0
    n = np.linalg.norm(fwd, axis=-1, keepdims=True)
    ok = np.isfinite(n[:, 0]) & (n[:, 0] > 1e-6)
    return np.where(ok[:, None], fwd / np.where(ok[:, None], n, 1.0), np.array([0.0, -1.0, 0.0]))


def travel_direction(points: np.ndarray, root: int = 0, min_distance: float = 0.3) -> np.ndarray:
    """The horizontal unit direction from the root's first to its last position, or -Y (the way
    Blender characters face) when it moves less than `min_distance`."""
    a, b = points[0, root], points[-1, root]
    d = np.array([b[0] - a[0], b[1] - a[1], 0.0])
    n = np.linalg.norm(d)
    if not np.isfinite(n) or n < min_distance:
        return np.array([0.0, -1.0, 0.0])
    return d / n

# ----------------------------------------------------------------------------- PNG


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as an 8-bit RGB PNG (zlib + struct only)."""
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def read_png(path: str | Path) -> np.ndarray:
    """Read back an 8-bit RGB PNG with no interlace, as written by `write_png` (filters 0–4 handled)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] != zlib.crc32(tag + body) & 0xFFFFFFFF:
            raise ValueError(f"{path}: bad CRC in chunk {tag!r}")
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    if header is None or header[2:5] != (8, 2, 0) or header[6] != 0:
        raise ValueError(f"{path}: only 8-bit RGB, non-interlaced PNGs are read here (header {header})")
    w, h = header[0], header[1]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, 3 * w), np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(3 * w, np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # 1 (sub), 3 (average), 4 (Paeth) depend on the pixel to the left
            cur = np.zeros(3 * w, np.int32)
            for x in range(3 * w):
                a = cur[x - 3] if x >= 3 else 0
                b, c = prev[x], (prev[x - 3] if x >= 3 else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        out[y] = cur
    return out.reshape(h, w, 3).astype(np.uint8)


# ----------------------------------------------------------------------------- drawing


class Canvas:
    """A float RGB image with anti-aliased thick lines, discs and a small bitmap font."""

    def __init__(self, height: int, width: int, background=BACKGROUND):
        self.img = np.empty((height, width, 3), np.float32)
        self.img[:] = background

    def _blend(self, y0: int, x0: int, alpha: np.ndarray, colour) -> None:
        region = self.img[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
        a = alpha[: region.shape[0], : region.shape[1], None]
        region += (np.asarray(colour, np.float32) - region) * a

    def _window(self, xs, ys, pad: float):
        h, w = self.img.shape[:2]
        x0, x1 = max(int(np.floor(min(xs) - pad)), 0), min(int(np.ceil(max(xs) + pad)) + 1, w)
        y0, y1 = max(int(np.floor(min(ys) - pad)), 0), min(int(np.ceil(max(ys) + pad)) + 1, h)
        if x0 >= x1 or y0 >= y1:
            return None
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        return x0, y0, gx + 0.5, gy + 0.5

    def line(self, p, q, width: float, colour, opacity: float = 1.0) -> None:
        """A round-capped segment from p to q (pixel coordinates, x right, y down)."""
        r = width / 2
        if not np.isfinite([*p, *q]).all():
            return
        win = self._window((p[0], q[0]), (p[1], q[1]), r + 1.5)
        if win is None:
            return
        x0, y0, gx, gy = win
        d = np.array(q, np.float32) - np.array(p, np.float32)
        n2 = float(d @ d)
        t = np.zeros_like(gx) if n2 < 1e-9 else np.clip(((gx - p[0]) * d[0] + (gy - p[1]) * d[1]) / n2, 0, 1)
        dist = np.hypot(gx - (p[0] + t * d[0]), gy - (p[1] + t * d[1]))
        self._blend(y0, x0, np.clip(r + 0.5 - dist, 0, 1) * opacity, colour)

    def disc(self, c, radius: float, colour, opacity: float = 1.0, ring: float = 0.0) -> None:
        """A filled disc, or with `ring` > 0 a circle outline of that thickness."""
        if not np.isfinite([*c, radius]).all():
            return
        win = self._window((c[0],), (c[1],), radius + 1.5)
        if win is None:
            return
        x0, y0, gx, gy = win
        dist = np.hypot(gx - c[0], gy - c[1])
        alpha = np.clip(radius + 0.5 - dist, 0, 1)
        if ring > 0:
            alpha = np.minimum(alpha, np.clip(dist - (radius - ring) + 0.5, 0, 1))
        self._blend(y0, x0, alpha * opacity, colour)

    def text(self, x: int, y: int, s: str, colour=INK, scale: int = 2) -> int:
        """Upper-case text in a 3×5 pixel font; returns the x after the last glyph."""
        for ch in s.upper():
            rows = _FONT.get(ch, _FONT["?"])
            glyph = np.array([[c == "#" for c in row] for row in rows], np.float32)
            glyph = np.kron(glyph, np.ones((scale, scale), np.float32))
            h, w = self.img.shape[:2]
            if 0 <= x and x + glyph.shape[1] <= w and 0 <= y and y + glyph.shape[0] <= h:
                self._blend(y, x, glyph, colour)
            x += 4 * scale
        return x

    def rgb(self) -> np.ndarray:
        return np.clip(np.rint(self.img), 0, 255).astype(np.uint8)


def text_width(s: str, scale: int = 2) -> int:
    return 4 * scale * len(s) - scale


def header_height(title: str = "", subtitle: str = "", warning: str = "") -> int:
    return 12 + (22 if title else 0) + (16 if subtitle else 0) + (18 if warning else 0)


def margin_left(n_views: int) -> int:
    return 62 if n_views > 1 else 8


def pick_frames(count: int, n: int = 8) -> list[int]:
    """`n` frame indices spread evenly from the first to the last of `count` frames."""
    if count <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, min(n, count))})


def render_strip(points: np.ndarray, segments: Sequence[tuple[int, int]], kinds: Sequence[int] | None = None, *,
                 labels: Sequence[str] | None = None, title: str = "", subtitle: str = "",
                 views: Sequence[str] = ("side", "front"), panel: tuple[int, int] = (150, 210),
                 head: int | tuple[int, int] | None = None, root: int = 0,
                 facing: np.ndarray | None = None, warning: str = "") -> np.ndarray:
    """The strip as an (H, W, 3) uint8 image: one column per frame of `points` (F, N, 3), a row per view.

    The scale is the same in every panel (metres per pixel from the tallest pose); each panel is
    centred on the figure's horizontal position and stands it on the floor (z = 0, or the lowest
    point if that is lower). `head` is the point at the head's centre (a 0.1 m circle) or the
    (base, top) pair of the head bone (a circle through both). `facing` is the way the body
    faces, one direction (3,) or one per frame (F, 3) (see `body_facing`); by default the root's
    (`root`) overall travel. The figure faces right in the side view and the viewer in the front
    view.
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 3 or pts.shape[2] != 3 or len(pts) == 0:
        raise ValueError(f"expected points of shape (frames, N, 3), got {pts.shape}")
    segs = [(int(i), int(j)) for i, j in segments]
    kinds = list(kinds) if kinds is not None else [CENTER] * len(segs)
    labels = list(labels) if labels is not None else [str(k) for k in range(len(pts))]
    pw, ph = panel
    frames = len(pts)
    if facing is None:
        facing = travel_direction(pts, root)
    facing = np.broadcast_to(np.asarray(facing, np.float64), (frames, 3))
    finite = pts[np.isfinite(pts).all(-1)]
    floor = min(0.0, float(finite[:, 2].min())) if len(finite) else 0.0
    top = float(finite[:, 2].max()) if len(finite) else 1.0
    height = max(top - floor, 0.3)
    scale = ph * HEIGHT_FILL / height                     # pixels per metre
    line_w = max(2.5, 0.045 * scale)
    left = margin_left(len(views))
    header = header_height(title, subtitle, warning)
    canvas = Canvas(header + len(views) * ph + 8, left + frames * pw + 8)
    y = 8
    if warning:
        canvas.text(8, y, warning, WARNING, 2)
        y += 18
    if title:
        canvas.text(8, y, title, INK, 3)
        y += 22
    if subtitle:
        canvas.text(8, y, subtitle, (110, 110, 110), 2)
    for row, view in enumerate(views):
        oy = header + row * ph
        canvas.text(8, oy + ph // 2 - 5, view, (110, 110, 110), 2)
        for col in range(frames):
            ox = left + col * pw
            p = pts[col]
            right, depth = view_axes(view, facing[col])
            sx = p @ right
            sz = p[:, 2]
            sd = p @ depth
            centre = float(np.nanmedian(sx)) if np.isfinite(sx).any() else 0.0
            base = oy + ph - FLOOR_MARGIN

            def to_px(u, z, _ox=ox, _c=centre, _b=base):
                return (_ox + pw / 2 + (u - _c) * scale, _b - (z - floor) * scale)

            # floor line and world-fixed ticks every 0.5 m
            canvas.line((ox + 6, base + 1), (ox + pw - 6, base + 1), 1.5, FLOOR)
            lo, hi = (int(np.floor((centre + s * pw / 2 / scale) / 0.5)) for s in (-1, 1))
            for k in range(lo, hi + 2):
                tx = to_px(k * 0.5, floor)[0]
                if ox + 6 <= tx <= ox + pw - 6:
                    canvas.line((tx, base + 1), (tx, base + 6), 1.2, FLOOR)
            if col:
                canvas.line((ox, oy + 6), (ox, oy + ph - 6), 1.0, (225, 225, 220))
            if row == 0 or len(views) == 1:
                canvas.text(ox + 6, oy + 6, labels[col], (120, 120, 120), 2)
            # painter's order: far segments first, drawn lighter
            order = sorted(range(len(segs)), key=lambda k: -(sd[segs[k][0]] + sd[segs[k][1]]))
            mid = float(np.nanmedian(sd)) if np.isfinite(sd).any() else 0.0
            for k in order:
                i, j = segs[k]
                far = (sd[i] + sd[j]) / 2 > mid + 0.02 and kinds[k] != CENTER
                colour = COLOURS.get(kinds[k], INK)
                if far:
                    colour = tuple(int(c + (b - c) * 0.45) for c, b in zip(colour, BACKGROUND, strict=True))
                canvas.line(to_px(sx[i], sz[i]), to_px(sx[j], sz[j]), line_w, colour)
                canvas.disc(to_px(sx[j], sz[j]), line_w * 0.62, colour)
            if head is not None:
                a, b = (head, head) if isinstance(head, (int, np.integer)) else head
                if np.isfinite(p[[a, b]]).all():
                    c = to_px((sx[a] + sx[b]) / 2, (sz[a] + sz[b]) / 2)
                    radius = 0.1 * scale if a == b else max(0.55 * np.linalg.norm(p[b] - p[a]), 0.06) * scale
                    canvas.disc(c, radius, BACKGROUND)
                    canvas.disc(c, radius, COLOURS[CENTER], ring=line_w * 0.8)
    return canvas.rgb()


# 3×5 glyphs: enough for titles, labels and numbers
_FONT = {
    "A": (".#.", "#.#", "###", "#.#", "#.#"), "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"), "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"), "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"), "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"), "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"), "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"), "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."), "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"), "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."), "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"), "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"), "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."), "Z": ("###", "..#", ".#.", "#..", "###"),
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("##.", "..#", ".#.", "#..", "###"), "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "##."),
    " ": ("...", "...", "...", "...", "..."), ".": ("...", "...", "...", "...", ".#."),
    ",": ("...", "...", "...", ".#.", "#.."), ":": ("...", ".#.", "...", ".#.", "..."),
    "-": ("...", "...", "###", "...", "..."), "_": ("...", "...", "...", "...", "###"),
    "/": ("..#", "..#", ".#.", "#..", "#.."), "(": (".#.", "#..", "#..", "#..", ".#."),
    ")": (".#.", "..#", "..#", "..#", ".#."), "!": (".#.", ".#.", ".#.", "...", ".#."),
    "'": (".#.", ".#.", "...", "...", "..."), "=": ("...", "###", "...", "###", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."), "?": ("##.", "..#", ".#.", "...", ".#."),
    "\"": ("#.#", "#.#", "...", "...", "..."), "#": ("#.#", "###", "#.#", "###", "#.#"),
    ";": ("...", ".#.", "...", ".#.", "#.."), "%": ("#.#", "..#", ".#.", "#..", "#.#"),
    "*": ("#.#", ".#.", "#.#", "...", "..."), "<": ("..#", ".#.", "#..", ".#.", "..#"),
    ">": ("#..", ".#.", "..#", ".#.", "#.."),
}
