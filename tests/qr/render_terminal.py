"""Renders a captured terminal screen (UTF-8 text of block characters) to a PNG as a
dark-background terminal shows it: each character cell 12×24 pixels, its ink (the lit part
of the block) white on black. Block elements by shape: space, full, halves (▀ ▄ ▌ ▐), and
the sextants of "Symbols for Legacy Computing", read from their Unicode names ("BLOCK
SEXTANT-1346": cells 1–6 in reading order), so this does not share the code that drew them.

    python3 render_terminal.py SCREEN.txt OUT.png"""
import sys
import unicodedata

from PIL import Image, ImageDraw

CELL_W, CELL_H = 12, 24
MARGIN = 24


def ink(ch):
    """The lit rectangles of a character as fractions (x0, y0, x1, y1) of its cell."""
    if ch == " ":
        return []
    if ch == "█":
        return [(0, 0, 1, 1)]
    if ch == "▀":
        return [(0, 0, 1, 0.5)]
    if ch == "▄":
        return [(0, 0.5, 1, 1)]
    if ch == "▌":
        return [(0, 0, 0.5, 1)]
    if ch == "▐":
        return [(0.5, 0, 1, 1)]
    name = unicodedata.name(ch, "")
    if name.startswith("BLOCK SEXTANT-"):
        rects = []
        for digit in name.split("-", 1)[1]:
            i = int(digit) - 1
            col, row = i % 2, i // 2
            rects.append((col / 2, row / 3, (col + 1) / 2, (row + 1) / 3))
        return rects
    raise SystemExit(f"not a block character: {ch!r} U+{ord(ch):04X}")


def main():
    lines = open(sys.argv[1], encoding="utf-8").read().rstrip("\n").split("\n")
    width = max(len(l) for l in lines)
    image = Image.new("L", (width * CELL_W + 2 * MARGIN, len(lines) * CELL_H + 2 * MARGIN), 0)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        for col, ch in enumerate(line):
            x, y = MARGIN + col * CELL_W, MARGIN + row * CELL_H
            for (x0, y0, x1, y1) in ink(ch):
                draw.rectangle(
                    [x + round(x0 * CELL_W), y + round(y0 * CELL_H), x + round(x1 * CELL_W) - 1, y + round(y1 * CELL_H) - 1],
                    fill=255,
                )
    image.save(sys.argv[2])


if __name__ == "__main__":
    main()
