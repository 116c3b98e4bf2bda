"""Decodes every *.pgm / *.png in a directory with an independent reader (zxing-cpp) and prints
one JSON line per image, in file-name order: {"file": name, "texts": [decoded QR texts]}.
Used by rust-core/tests/qr_decodes.rs to decode hundreds of rendered codes in one process.
Exit status 1 when the directory holds no image."""
import json
import pathlib
import sys

import zxingcpp
from PIL import Image


def main() -> int:
    images = sorted(p for p in pathlib.Path(sys.argv[1]).iterdir() if p.suffix in (".pgm", ".png"))
    for path in images:
        with Image.open(path) as image:
            results = zxingcpp.read_barcodes(image)
        texts = [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]
        print(json.dumps({"file": path.name, "texts": texts}))
    return 0 if images else 1


if __name__ == "__main__":
    sys.exit(main())
