"""QR code PNGs in several sizes and posters (Pillow): a background (uploaded, or a generated
gradient), the QR code and a line of text.

Fonts: a CJK font is looked up with ``fc-list :lang=zh``. When none is installed (Debian: package
fonts-noto-cjk), Chinese text cannot be drawn; the poster is then made without its text and the
console says so, rather than drawing boxes."""

from __future__ import annotations

import contextlib
import functools
import io
import subprocess

from PIL import Image, ImageDraw, ImageFont

from siyu.channels import services
from siyu.channels.models import ChannelCode
from siyu.wecom import gateway
from siyu.wecom.gateway import WeComAPIError

# A QR image that is not cached and cannot be fetched: WeCom's API error (its network failure is a
# subclass of it) or the download's own (requests' errors are OSErrors; ValueError: not an image
# URL or too large). The views answer 503 for these.
QR_UNAVAILABLE = (WeComAPIError, OSError, ValueError)

SIZES = {"s": 258, "m": 430, "l": 860, "xl": 1280}  # px: 8 cm / 15 cm / 30 cm / 50 cm prints
POSTER_W, POSTER_H = 750, 1334


def qr_source(code: ChannelCode) -> Image.Image:
    """The code's QR image as WeCom serves it (cached on disk per config id)."""
    path = services.media_dir() / f"qr-{code.config_id}.png"
    if not path.exists():
        data = gateway.fetch_qr_png(code.qr_url)
        Image.open(io.BytesIO(data)).verify()  # cache only a real image (UnidentifiedImageError is an OSError)
        path.write_bytes(data)
    return Image.open(path).convert("RGB")


def qr_png(code: ChannelCode, size: str) -> bytes:
    px = SIZES.get(size, SIZES["m"])
    img = qr_source(code).resize((px, px), Image.Resampling.NEAREST)  # nearest: keep the modules sharp
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path = line.split(":")[0].strip()
        if path:
            return path
    return None


def _background(code: ChannelCode) -> Image.Image:
    if code.poster_background:
        try:
            img = Image.open(services.media_dir() / code.poster_background).convert("RGB")
            return img.resize((POSTER_W, POSTER_H))
        except OSError:
            pass
    return default_background()


def default_background() -> Image.Image:
    img = Image.new("RGB", (POSTER_W, POSTER_H))
    draw = ImageDraw.Draw(img)
    for y in range(POSTER_H):  # a default background: a calm vertical gradient
        t = y / POSTER_H
        draw.line([(0, y), (POSTER_W, y)], fill=(int(24 + 40 * t), int(120 + 60 * t), int(200 - 40 * t)))
    return img


def poster_png(code: ChannelCode) -> tuple[bytes, bool]:
    """(PNG bytes, whether the text could be drawn)."""
    return compose(_background(code), qr_source(code), code.poster_text or code.name)


def compose(img: Image.Image, qr_image: Image.Image, text: str, fmt: str = "PNG") -> tuple[bytes, bool]:
    """A poster: ``img`` (750×1334) with the QR code in a white frame and ``text`` on top; (bytes
    in ``fmt``, whether the text could be drawn: a CJK font is needed for Chinese)."""
    img = img.copy()
    qr = qr_image.resize((420, 420), Image.Resampling.NEAREST)
    x, y = (POSTER_W - 440) // 2, POSTER_H - 620
    ImageDraw.Draw(img).rectangle([x, y, x + 440, y + 440], fill="white")
    img.paste(qr, (x + 10, y + 10))
    drawn = False
    font_path = cjk_font_path()
    draw = ImageDraw.Draw(img)
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    if font_path:
        font = ImageFont.truetype(font_path, 48)
        draw.text((POSTER_W // 2, 200), text, fill="white", font=font, anchor="mm")
        drawn = True
    elif text.isascii():
        font = ImageFont.load_default(size=48)
        draw.text((POSTER_W // 2, 200), text, fill="white", font=font, anchor="mm")
        drawn = True
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue(), drawn


def guide_poster(code: ChannelCode, background: bytes | None, text: str) -> bytes:
    """A library poster for one guide: ``background`` (an image's bytes; None: the default) with
    the guide's own code, as JPEG (small enough for WeCom's 2 MB image limit)."""
    img = default_background()
    if background:
        with contextlib.suppress(OSError):  # an unreadable background: the default one
            img = Image.open(io.BytesIO(background)).convert("RGB").resize((POSTER_W, POSTER_H))
    return compose(img, qr_source(code), text, fmt="JPEG")[0]
