"""Re-package the pyctcdecode 0.5.0 wheel with its ``numpy<2`` pin relaxed.

pyctcdecode 0.5.0 (the latest release, January 2023) declares
``Requires-Dist: numpy (<2.0.0,>=1.15.0)``, while pyarrow >= 16 (needed by
``datasets`` >= 3) refuses numpy < 2 at import. Its code uses only numpy calls that
numpy 2 keeps (``np.log``, ``np.exp``, ``np.clip``, ``np.isfinite``, ...); the
decoding test in ``tests/test_install.py`` checks this at runtime.

What this script changes, and nothing else:
  * METADATA: ``Version: 0.5.0`` -> ``Version: 0.5.0+hfw2v2``;
    ``Requires-Dist: numpy (<2.0.0,>=1.15.0)`` -> ``Requires-Dist: numpy (>=1.15.0)``.
  * the ``.dist-info`` folder is renamed for the new version and RECORD rewritten with
    the new hashes; ``HFW2V2_CHANGES.txt`` is added to the ``.dist-info`` folder.
The Python sources, LICENSE (Apache-2.0) and AUTHORS.md are copied byte for byte.

Usage (from the repository root; the upstream wheel comes from PyPI):
    pip download --no-deps pyctcdecode==0.5.0 -d /tmp/pyctc
    python vendor/repack_pyctcdecode.py /tmp/pyctc/pyctcdecode-0.5.0-py2.py3-none-any.whl vendor/
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

OLD_VERSION = "0.5.0"
NEW_VERSION = "0.5.0+hfw2v2"
OLD_PIN = "Requires-Dist: numpy (<2.0.0,>=1.15.0)"
NEW_PIN = "Requires-Dist: numpy (>=1.15.0)"
CHANGES = (
    "Re-packaged by hf_w2v2 (vendor/repack_pyctcdecode.py) from pyctcdecode 0.5.0 "
    "(https://github.com/kensho-technologies/pyctcdecode, Apache-2.0).\n"
    "Changed: METADATA version 0.5.0 -> 0.5.0+hfw2v2 and numpy requirement "
    "'<2.0.0,>=1.15.0' -> '>=1.15.0'. No source file was changed.\n"
)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def repack(src: Path, out_dir: Path) -> Path:
    """Write the patched wheel into ``out_dir`` and return its path."""
    old_info, new_info = f"pyctcdecode-{OLD_VERSION}.dist-info/", f"pyctcdecode-{NEW_VERSION}.dist-info/"
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(src) as zin:
        for name in zin.namelist():
            if name == old_info + "RECORD":
                continue
            data = zin.read(name)
            if name == old_info + "METADATA":
                text = data.decode("utf-8")
                if OLD_PIN not in text or f"Version: {OLD_VERSION}\n" not in text:
                    raise ValueError(f"{src} is not the expected pyctcdecode {OLD_VERSION} wheel")
                text = text.replace(OLD_PIN, NEW_PIN)
                text = text.replace(f"Version: {OLD_VERSION}\n", f"Version: {NEW_VERSION}\n", 1)
                data = text.encode("utf-8")
            files[name.replace(old_info, new_info)] = data
    files[new_info + "HFW2V2_CHANGES.txt"] = CHANGES.encode("utf-8")
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[new_info + "RECORD"] = (record + f"{new_info}RECORD,,\n").encode("utf-8")
    out = out_dir / f"pyctcdecode-{NEW_VERSION}-py2.py3-none-any.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2023, 1, 1, 0, 0, 0))  # fixed date: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zout.writestr(info, data)
    return out


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    print("upstream sha256:", hashlib.sha256(source.read_bytes()).hexdigest())
    wheel = repack(source, target)
    print("wrote", wheel, "sha256:", hashlib.sha256(wheel.read_bytes()).hexdigest())
