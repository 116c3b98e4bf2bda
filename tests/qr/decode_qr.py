"""Decodes the QR codes in a PNG with an independent reader (zxing-cpp) and prints the text of
each, one per line. Used by the Rust tests to prove rendered codes decode to their payload.
Exit status 2 when no QR code is found."""
import sys

import zxingcpp
from PIL import Image


def main() -> int:
    image = Image.open(sys.argv[1])
    results = [r for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    for result in results:
        print(result.text)
    return 0 if results else 2


if __name__ == "__main__":
    sys.exit(main())
