"""Small files replaced whole: a reader sees the old content or the new, never a mix."""
import contextlib
import os
from pathlib import Path

from switch.storage.segments import fsync_dir


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Writes `data` to a temporary file beside `path` (created with `mode`, less the umask),
    fsyncs it, renames it over `path` and fsyncs the directory, so that after a crash `path`
    holds the old content or the new. On failure the old file stands and the temporary goes."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        # A leftover temporary file would keep its own mode under O_TRUNC: start afresh.
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
