"""Image files that cannot be decoded, reported as one line naming the file, also from DataLoader workers.

An ``image_folder`` dataset is read lazily: a corrupt or truncated image is found when a
batch first needs it, possibly hours into training and possibly in a worker process. The
loader here turns the decoder's error into :class:`ImageFileError`, a
:class:`~nni_dynamic_supernet.errors.ConfigError` naming the file. PyTorch re-raises a
worker's exception in the main process by calling its class with ``message=`` (the
worker's traceback as text) when the class has a ``message`` attribute; the class takes
that text back to its one line, so the user sees the same line either way.
"""
from __future__ import annotations

from typing import Any, Optional

from ..errors import ConfigError, one_line

__all__ = ["ImageFileError", "CheckedImageLoader"]


class ImageFileError(ConfigError):
    """An image of an ``image_folder`` dataset that cannot be read (one line, exit status 2)."""

    #: Non-empty, so that PyTorch re-raises a worker's instance as ``ImageFileError(message=...)``.
    message = "image file error"

    def __init__(self, field: Optional[str] = None, value: Any = None, fix: Optional[str] = None, *,
                 message: Optional[str] = None) -> None:
        if message is None:
            super().__init__(field or "data.root", value, fix or "cannot be read")
            return
        # A worker's traceback text: its last line is "<module>.ImageFileError: <our line>".
        lines = [line for line in str(message).splitlines() if line.strip()]
        last = lines[-1] if lines else str(message)
        text = last.split("ImageFileError: ", 1)[-1]
        self.field, self.value, self.fix = "data.root", None, text
        ValueError.__init__(self, one_line(text))


class CheckedImageLoader:
    """``ImageFolder``'s loader (PIL, RGB) with decoding errors as :class:`ImageFileError` (picklable for workers).

    Parameters
    ----------
    root
        ``data.root``, named in the message.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def __call__(self, path: str) -> Any:
        from PIL import Image
        try:
            with open(path, "rb") as fh:
                image = Image.open(fh)
                return image.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises these for corrupt or truncated files
            raise ImageFileError("data.root", self.root, f"image {path} cannot be read ({type(exc).__name__}: "
                                                         f"{one_line(str(exc), 120)}); remove or replace it") from None
