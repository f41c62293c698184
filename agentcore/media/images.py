"""Images as stored and shown to the model: checked, turned upright, scaled down, re-encoded.

Re-encoding also drops the photo's metadata (EXIF, which may hold where it was taken). An image
whose header claims more pixels than ``max_pixels`` is refused before its pixels are decoded,
so a small file that would unpack to gigabytes (a decompression bomb) costs nothing. Pillow is
imported with the first image, not at start.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

JPEG_QUALITY = 85


class ImageRefused(Exception):
    """The image cannot be used; the message is one sentence for the person."""


@dataclass(frozen=True, slots=True)
class FittedImage:
    data: bytes
    mime_type: str
    width: int
    height: int


def fit_image(data: bytes, max_side: int, max_pixels: int) -> FittedImage:
    """The image scaled to at most ``max_side`` pixels on its longer side, as JPEG (PNG if it
    has transparency). Blocking (call it in a thread); raises ``ImageRefused``."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageRefused(
                        f"That image is {width}×{height} pixels, more than I can take; please "
                        "send a smaller one."
                    )
                image = ImageOps.exif_transpose(opened)
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                return _encode(image)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limit (about 89 MP) is checked inside ``Image.open``, before ours.
        raise ImageRefused(
            "That image has more pixels than I can take; please send a smaller one."
        ) from None
    except UnidentifiedImageError:
        raise ImageRefused(
            "I couldn't open that image; please send it as a JPEG or PNG photo."
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt image data
        raise ImageRefused("That image seems to be damaged, so I couldn't open it.") from exc


def _encode(image: Image.Image) -> FittedImage:
    out = io.BytesIO()
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        mime = "image/jpeg"
    return FittedImage(out.getvalue(), mime, image.width, image.height)
