#!/usr/bin/python3
"""What a browser made of the report page, for tests/postfix/report_page_test.sh.

  page_check.py dom DUMP.html   the DOM Chromium dumped (--dump-dom): counts
                                of the page's parts, and of anything that
                                could run or fetch, as key=value lines
  page_check.py png SHOT.png    a screenshot: its size, how much of it is
                                drawn, and pixels in the limit-line red and
                                the trip orange, as key=value lines
Only the standard library (html.parser, zlib).
"""
import collections
import html.parser
import struct
import sys
import zlib


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.count = collections.Counter()
        self.entities = collections.defaultdict(set)
        self.limits = set()
        self.active = 0     # script, iframe, img, object, embed, link elements
        self.handlers = 0   # on* attributes
        self.fetches = 0    # attributes or styles that name a URL
        self.open_details = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        for c in classes:
            self.count[f"{tag}.{c}"] += 1
        if tag in ("script", "iframe", "img", "object", "embed", "link", "base", "meta") and \
                not (tag == "meta" and ("charset" in a or a.get("name") == "viewport")):
            self.active += 1
        for k, v in attrs:
            if k.startswith("on"):
                self.handlers += 1
            v = (v or "").lower()
            if k in ("src", "href", "xlink:href", "action", "srcset", "poster", "data") or \
                    "url(" in v or "http:" in v or "https:" in v:
                self.fetches += 1
        if "data-entity" in a and classes:
            self.entities[f"{tag}.{classes[0]}"].add(a["data-entity"])
        if tag == "line" and "limit" in classes:
            self.limits.add(a.get("data-limit"))
        if tag == "details" and "open" in a:
            self.open_details += 1

    def handle_data(self, data):
        if "url(" in data or "@import" in data or "http:" in data or "https:" in data:
            self.fetches += 1


def dom(path):
    d = Dom()
    with open(path, encoding="utf-8", errors="replace") as f:
        d.feed(f.read())
    for k in sorted(d.count):
        print(f"count.{k}={d.count[k]}")
    for k in sorted(d.entities):
        print(f"entities.{k}={','.join(sorted(d.entities[k]))}")
    print(f"limits={','.join(sorted(x for x in d.limits if x))}")
    print(f"active={d.active}")
    print(f"handlers={d.handlers}")
    print(f"fetches={d.fetches}")
    print(f"open_details={d.open_details}")


def png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        print("error=not a PNG")
        return
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    if depth != 8 or colour not in (2, 6) or interlace:
        print(f"error=unsupported PNG (depth {depth}, colour {colour}, interlace {interlace})")
        return
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    drawn = red = orange = 0
    i = 0
    for _ in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            r, g, bl = line[x], line[x + 1], line[x + 2]
            if r < 240 or g < 240 or bl < 240:
                drawn += 1
            if abs(r - 214) < 30 and abs(g - 39) < 40 and abs(bl - 40) < 40:
                red += 1
            if abs(r - 255) < 20 and abs(g - 159) < 30 and abs(bl - 28) < 40:
                orange += 1
        prev = line
    print(f"width={w}")
    print(f"height={h}")
    print(f"drawn_permille={drawn * 1000 // (w * h)}")
    print(f"red={red}")
    print(f"orange={orange}")


if __name__ == "__main__":
    {"dom": dom, "png": png}[sys.argv[1]](sys.argv[2])
