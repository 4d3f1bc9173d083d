"""Procedurally drawn scenes: one object on a table against a wall, with a caption.

This is the training (and evaluation) data of the project's embedded default
model. Everything is deterministic: scene ``i`` of seed ``s`` is always the same
image and caption, on any machine.

Objects come in semantic groups, so that experiments can share denoising steps
between similar prompts ("a red apple ..." / "a yellow lemon ...") and fail
between dissimilar ones ("a red apple ..." / "a blue bus ...").

Example
-------
>>> from pipeline.embedded.scenes import SceneGenerator
>>> gen = SceneGenerator(seed=0)
>>> scene = gen.scene(3)
>>> scene.image.shape, scene.image.dtype
((64, 64, 3), dtype('uint8'))
>>> isinstance(scene.caption, str)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: object -> semantic group
OBJECT_GROUPS: dict[str, str] = {
    "apple": "fruit",
    "lemon": "fruit",
    "orange": "fruit",
    "bird": "animal",
    "cat": "animal",
    "rabbit": "animal",
    "car": "vehicle",
    "bus": "vehicle",
    "boat": "vehicle",
}
#: class index order used by the classifier
OBJECTS: tuple[str, ...] = tuple(OBJECT_GROUPS)
GROUPS: tuple[str, ...] = ("fruit", "animal", "vehicle")

#: named colours, RGB in [0, 1]
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.82, 0.12, 0.12),
    "green": (0.25, 0.68, 0.22),
    "yellow": (0.96, 0.86, 0.20),
    "orange": (0.97, 0.55, 0.10),
    "brown": (0.50, 0.31, 0.16),
    "blue": (0.18, 0.35, 0.85),
    "black": (0.10, 0.10, 0.11),
    "grey": (0.55, 0.55, 0.57),
    "white": (0.95, 0.95, 0.93),
    "pink": (0.95, 0.55, 0.70),
}
#: colours each object may take (first is the most typical)
OBJECT_COLOURS: dict[str, tuple[str, ...]] = {
    "apple": ("red", "green"),
    "lemon": ("yellow",),
    "orange": ("orange",),
    "bird": ("brown", "blue", "red"),
    "cat": ("black", "grey", "orange"),
    "rabbit": ("white", "brown", "grey"),
    "car": ("red", "blue", "green"),
    "bus": ("yellow", "red", "blue"),
    "boat": ("white", "red", "blue"),
}
#: table surfaces: name -> base colour
TABLES: dict[str, tuple[float, float, float]] = {
    "wooden": (0.55, 0.36, 0.20),
    "white": (0.92, 0.92, 0.90),
    "blue": (0.22, 0.36, 0.68),
    "green": (0.24, 0.50, 0.30),
    "black": (0.14, 0.14, 0.15),
    "pink": (0.90, 0.62, 0.70),
}
#: wall colours (not always named in the caption)
WALLS: dict[str, tuple[float, float, float]] = {
    "grey": (0.62, 0.63, 0.66),
    "beige": (0.86, 0.80, 0.66),
    "blue": (0.60, 0.72, 0.86),
    "green": (0.66, 0.80, 0.62),
    "white": (0.90, 0.90, 0.88),
}
SIZES = ("small", "big")
PHRASINGS = (
    "a {colour} {obj} on a {table} table",
    "a photo of a {colour} {obj} on a {table} table",
    "a {size} {colour} {obj} on a {table} table",
    "a {colour} {obj} sitting on a {table} table",
    "a {colour} {obj} on a {table} table in front of a {wall} wall",
)


def article(word: str) -> str:
    """'a' or 'an' for ``word``."""
    return "an" if word[0] in "aeiou" else "a"


def make_caption(colour: str, obj: str, table: str, wall: str = "grey", size: str = "small",
                 phrasing: int = 0) -> str:
    """Caption of a scene from its parameters (one of :data:`PHRASINGS`)."""
    text = PHRASINGS[phrasing].format(colour=colour, obj=obj, table=table, wall=wall, size=size)
    # fix the article before a vowel ("an orange cat", "an apple" never happens: colour first)
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a":
            words[i] = article(words[i + 1])
    return " ".join(words)


def vocabulary() -> list[str]:
    """Every word any caption can contain (sorted), for the word-level tokenizer."""
    words: set[str] = set()
    for obj, colours in OBJECT_COLOURS.items():
        for colour in colours:
            for table in TABLES:
                for wall in WALLS:
                    for size in SIZES:
                        for k in range(len(PHRASINGS)):
                            words.update(make_caption(colour, obj, table, wall, size, k).split())
    return sorted(words)


@dataclass(frozen=True)
class Scene:
    """One scene. ``image``: uint8 [H, W, 3]; ``label``: index into :data:`OBJECTS`."""

    image: np.ndarray
    caption: str
    obj: str
    colour: str
    table: str
    wall: str
    label: int


class SceneGenerator:
    """Deterministic generator of scenes.

    Parameters
    ----------
    seed : int
        Base seed. Scene ``i`` uses ``numpy.random.default_rng([seed, i])``.
    resolution : int
        Side of the square image [pixel]. Drawn at twice that and box-filtered
        (anti-aliasing).
    objects : sequence of str, optional
        Restrict to these objects (default: all of :data:`OBJECTS`).
    """

    def __init__(self, seed: int = 0, resolution: int = 64, objects: tuple[str, ...] | None = None):
        if resolution < 16:
            raise ValueError(f"resolution must be >= 16 pixels, got {resolution}")
        objects = tuple(objects) if objects is not None else OBJECTS
        unknown = [o for o in objects if o not in OBJECT_GROUPS]
        if unknown:
            raise ValueError(f"unknown objects {unknown}; allowed: {list(OBJECTS)}")
        self.seed = int(seed)
        self.resolution = int(resolution)
        self.objects = objects
        side = 2 * self.resolution
        self._yy, self._xx = np.mgrid[0:side, 0:side].astype(np.float32) / side

    # ----------------------------------------------------------------- public
    def scene(self, index: int, obj: str | None = None, colour: str | None = None,
              table: str | None = None) -> Scene:
        """Scene number ``index``; ``obj``/``colour``/``table`` force a parameter."""
        rng = np.random.default_rng([self.seed, int(index)])
        obj = obj or self.objects[rng.integers(len(self.objects))]
        colours = OBJECT_COLOURS[obj]
        colour = colour or colours[rng.integers(len(colours))]
        table = table or list(TABLES)[rng.integers(len(TABLES))]
        wall = list(WALLS)[rng.integers(len(WALLS))]
        size = SIZES[rng.integers(len(SIZES))]
        phrasing = int(rng.integers(len(PHRASINGS)))
        image = self._draw(rng, obj, colour, table, wall, size)
        caption = make_caption(colour, obj, table, wall, size, phrasing)
        return Scene(image, caption, obj, colour, table, wall, OBJECTS.index(obj))

    def batch(self, start: int, count: int) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Scenes ``start .. start+count-1``: images uint8 [N,H,W,3], captions, labels int64 [N]."""
        scenes = [self.scene(start + i) for i in range(count)]
        return (np.stack([s.image for s in scenes]), [s.caption for s in scenes],
                np.array([s.label for s in scenes], dtype=np.int64))

    # -------------------------------------------------------------- drawing
    def _draw(self, rng, obj, colour, table, wall, size) -> np.ndarray:
        x, y = self._xx, self._yy
        img = np.empty(x.shape + (3,), np.float32)
        horizon = 0.55 + rng.uniform(-0.05, 0.05)
        wall_rgb = np.array(WALLS[wall]) * rng.uniform(0.9, 1.05)
        img[:] = wall_rgb * (0.92 + 0.08 * y[..., None] / horizon)
        table_rgb = np.array(TABLES[table]) * rng.uniform(0.9, 1.1)
        on_table = y >= horizon
        shade = 0.85 + 0.2 * (y - horizon) / (1 - horizon)
        surface = table_rgb * shade[..., None]
        if table == "wooden":  # grain
            phase = rng.uniform(0, 6.3)
            surface = surface * (1 + 0.06 * np.sin(40 * y + 3 * np.sin(7 * x + phase)))[..., None]
        img[on_table] = surface[on_table]
        edge = np.abs(y - horizon) < 0.012
        img[edge] = table_rgb * 0.6

        scale = (0.9 if size == "small" else 1.2) * rng.uniform(0.9, 1.1)
        cx = rng.uniform(0.35, 0.65)
        base_y = horizon + rng.uniform(0.12, 0.22)  # where the object touches the table
        rgb = np.array(COLOURS[colour]) * rng.uniform(0.9, 1.08)
        # contact shadow
        shadow = ((x - cx) / (0.24 * scale)) ** 2 + ((y - base_y) / (0.035 * scale)) ** 2 < 1
        img[shadow] *= 0.7
        getattr(self, f"_draw_{obj}")(img, x, y, cx, base_y, scale, rgb, rng)
        img = np.clip(img, 0, 1)
        h = self.resolution
        img = img.reshape(h, 2, h, 2, 3).mean(axis=(1, 3))
        return (img * 255 + 0.5).astype(np.uint8)

    @staticmethod
    def _ellipse(x, y, cx, cy, rx, ry):
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1

    def _paint(self, img, mask, rgb, x=None, y=None, cx=0.0, cy=0.0, r=1.0):
        """Fill ``mask`` with ``rgb``, with a soft spherical highlight if a centre is given."""
        if x is None:
            img[mask] = rgb
            return
        d = np.sqrt(((x - cx + 0.3 * r) ** 2 + (y - cy + 0.3 * r) ** 2)) / (1.6 * r)
        light = np.clip(1.15 - 0.45 * d, 0.6, 1.2)
        img[mask] = np.clip(rgb * light[mask][:, None], 0, 1)

    # fruits
    def _draw_apple(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.16 * s
        cy = by - r
        body = self._ellipse(x, y, cx - 0.45 * r, cy, 0.62 * r, r) | self._ellipse(x, y, cx + 0.45 * r, cy, 0.62 * r, r)
        self._paint(img, body, rgb, x, y, cx, cy, r)
        stem = (np.abs(x - cx - 0.05 * r) < 0.012) & (y > cy - 1.35 * r) & (y < cy - 0.8 * r)
        self._paint(img, stem, np.array([0.35, 0.22, 0.1]))
        leaf = self._ellipse(x, y, cx + 0.3 * r, cy - 1.15 * r, 0.28 * r, 0.12 * r)
        self._paint(img, leaf, np.array([0.2, 0.6, 0.15]))

    def _draw_lemon(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.2 * s
        cy = by - 0.62 * r
        body = self._ellipse(x, y, cx, cy, r, 0.62 * r)
        tips = self._ellipse(x, y, cx - 0.95 * r, cy, 0.22 * r, 0.16 * r) | self._ellipse(x, y, cx + 0.95 * r, cy, 0.22 * r, 0.16 * r)
        self._paint(img, body | tips, rgb, x, y, cx, cy, r)

    def _draw_orange(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.15 * s
        cy = by - r
        body = self._ellipse(x, y, cx, cy, r, r)
        self._paint(img, body, rgb, x, y, cx, cy, r)
        dimples = body & (np.sin(90 * x) * np.sin(90 * y) > 0.85)
        img[dimples] *= 0.9
        navel = self._ellipse(x, y, cx, cy - 0.8 * r, 0.08 * r, 0.06 * r)
        self._paint(img, navel, np.array([0.3, 0.45, 0.1]))

    # animals
    def _draw_bird(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.14 * s
        face = 1 if rng.uniform() < 0.5 else -1
        cy = by - 0.9 * r
        body = self._ellipse(x, y, cx, cy, 1.05 * r, 0.72 * r)
        tail = (np.abs(y - cy + 0.2 * r) < 0.25 * r * (1 + face * (cx - x) / r)) & (face * (cx - x) > 0.7 * r) & (face * (cx - x) < 1.7 * r)
        head = self._ellipse(x, y, cx + face * 0.85 * r, cy - 0.75 * r, 0.45 * r, 0.45 * r)
        self._paint(img, body | tail | head, rgb, x, y, cx, cy, r)
        beak = (face * (x - cx) > 1.2 * r) & (face * (x - cx) < 1.2 * r + 0.45 * r) & \
            (np.abs(y - (cy - 0.72 * r)) < 0.14 * r * (1 - (face * (x - cx) - 1.2 * r) / (0.45 * r)))
        self._paint(img, beak, np.array([0.98, 0.7, 0.1]))
        eye = self._ellipse(x, y, cx + face * 0.95 * r, cy - 0.85 * r, 0.08 * r, 0.08 * r)
        self._paint(img, eye, np.array([0.02, 0.02, 0.02]))
        legs = ((np.abs(x - cx - 0.2 * r) < 0.01) | (np.abs(x - cx + 0.2 * r) < 0.01)) & (y > cy + 0.6 * r) & (y < by)
        self._paint(img, legs, np.array([0.9, 0.6, 0.1]))

    def _draw_cat(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.13 * s
        cy = by - 1.0 * r
        body = self._ellipse(x, y, cx, cy, 0.8 * r, 1.0 * r)
        hy = cy - 1.35 * r
        head = self._ellipse(x, y, cx, hy, 0.62 * r, 0.55 * r)
        ears = np.zeros_like(body)
        for side in (-1, 1):
            ex = cx + side * 0.38 * r
            ears |= (y < hy - 0.2 * r) & (y > hy - 1.05 * r) & (np.abs(x - ex) < 0.28 * r * (y - (hy - 1.05 * r)) / (0.85 * r))
        tail = (np.abs(x - cx - 1.0 * r) < 0.12 * r) & (y > cy - 0.6 * r) & (y < by - 0.1 * r)
        self._paint(img, body | head | ears | tail, rgb, x, y, cx, cy - 0.6 * r, 1.4 * r)
        for side in (-1, 1):
            eye = self._ellipse(x, y, cx + side * 0.25 * r, hy - 0.05 * r, 0.09 * r, 0.12 * r)
            self._paint(img, eye, np.array([0.55, 0.85, 0.25]))

    def _draw_rabbit(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.13 * s
        cy = by - 0.85 * r
        body = self._ellipse(x, y, cx, cy, 1.0 * r, 0.85 * r)
        hy = cy - 1.1 * r
        head = self._ellipse(x, y, cx + 0.45 * r, hy, 0.5 * r, 0.45 * r)
        ears = self._ellipse(x, y, cx + 0.3 * r, hy - 1.0 * r, 0.14 * r, 0.7 * r) | \
            self._ellipse(x, y, cx + 0.65 * r, hy - 0.95 * r, 0.14 * r, 0.7 * r)
        tail = self._ellipse(x, y, cx - 1.0 * r, cy - 0.2 * r, 0.28 * r, 0.28 * r)
        self._paint(img, body | head | ears, rgb, x, y, cx, cy - 0.6 * r, 1.4 * r)
        self._paint(img, tail, np.clip(rgb * 1.2 + 0.15, 0, 1))
        eye = self._ellipse(x, y, cx + 0.6 * r, hy - 0.05 * r, 0.08 * r, 0.08 * r)
        self._paint(img, eye, np.array([0.1, 0.05, 0.05]))

    # vehicles
    def _wheel(self, img, x, y, wx, wy, r):
        self._paint(img, self._ellipse(x, y, wx, wy, r, r), np.array([0.08, 0.08, 0.08]))
        self._paint(img, self._ellipse(x, y, wx, wy, 0.45 * r, 0.45 * r), np.array([0.7, 0.7, 0.72]))

    def _draw_car(self, img, x, y, cx, by, s, rgb, rng):
        w, h = 0.26 * s, 0.08 * s
        wr = 0.045 * s
        body_top = by - wr - h
        body = (np.abs(x - cx) < w) & (y > body_top) & (y < by - wr * 0.6)
        cabin = (np.abs(x - cx + 0.05 * s) < 0.55 * w * (1 - 0.5 * (body_top - y) / (0.08 * s))) & (y <= body_top) & (y > body_top - 0.08 * s)
        self._paint(img, body | cabin, rgb)
        window = (np.abs(x - cx + 0.05 * s) < 0.42 * w * (1 - 0.5 * (body_top - y) / (0.08 * s))) & (y < body_top - 0.015) & (y > body_top - 0.065 * s)
        self._paint(img, window, np.array([0.7, 0.85, 0.95]))
        for side in (-1, 1):
            self._wheel(img, x, y, cx + side * 0.6 * w, by - wr, wr)

    def _draw_bus(self, img, x, y, cx, by, s, rgb, rng):
        w, h = 0.34 * s, 0.2 * s
        wr = 0.04 * s
        top = by - wr - h
        body = (np.abs(x - cx) < w) & (y > top) & (y < by - wr * 0.6)
        self._paint(img, body, rgb)
        for k in range(5):
            wx = cx - w + (k + 0.6) * (2 * w / 5.2)
            window = (np.abs(x - wx) < 0.045 * s) & (y > top + 0.03 * s) & (y < top + 0.09 * s)
            self._paint(img, window, np.array([0.7, 0.85, 0.95]))
        for side in (-1, 1):
            self._wheel(img, x, y, cx + side * 0.7 * w, by - wr, wr)

    def _draw_boat(self, img, x, y, cx, by, s, rgb, rng):
        w, h = 0.3 * s, 0.08 * s
        top = by - h
        hull = (y > top) & (y < by) & (np.abs(x - cx) < w - (y - top) / h * 0.12 * s)
        self._paint(img, hull, rgb)
        mast = (np.abs(x - cx) < 0.01) & (y < top) & (y > top - 0.32 * s)
        self._paint(img, mast, np.array([0.3, 0.2, 0.1]))
        sail = (x > cx + 0.015) & (y < top - 0.02) & (y > top - 0.3 * s) & \
            (x - cx < 0.22 * s * (y - (top - 0.3 * s)) / (0.28 * s))
        self._paint(img, sail, np.array([0.96, 0.96, 0.92]) if not np.allclose(rgb, COLOURS["white"], atol=0.15) else np.array([0.85, 0.2, 0.2]))


def object_in_prompt(prompt: str) -> str | None:
    """The scene object named in ``prompt`` (the last one named), or None.

    >>> object_in_prompt("a yellow lemon on a wooden table")
    'lemon'
    """
    found = None
    for word in prompt.lower().replace(",", " ").split():
        if word in OBJECT_GROUPS:
            found = word
    return found
