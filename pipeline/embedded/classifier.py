"""The project's prompt-adherence judge: a small CNN that names the object *and* its colour, or abstains.

:class:`SceneJudge` implements :class:`pipeline.judge.Judge`. It is trained by
the project on the procedural scenes of :mod:`pipeline.embedded.scenes`
(augmented with blur, noise and colour jitter so that it also reads the softer
images a diffusion model makes) plus out-of-distribution negatives
(:data:`NEGATIVE_FAMILIES`: noise, blank images, heavily blurred scenes,
half-drawn scenes, wrong shapes, empty tables) that form an explicit
``"reject"`` class. On top of that class it abstains when its confidence (the
top softmax probability of a ``"<colour> <object>"`` label) is below a
threshold chosen on a held-out split (see :func:`calibrate`). An image is
*adherent* to a prompt when the judge does not abstain and sees the prompt's
object in the prompt's colour (any colour when the prompt names none).

Shipped in ``pipeline/models/scene-classifier`` with a model card
(``README.md``) written by the same command that trains it.

Example
-------
>>> import numpy as np
>>> from pipeline.embedded.classifier import load_judge, colour_in_prompt
>>> from pipeline.embedded.scenes import SceneGenerator
>>> judge = load_judge()
>>> scene = SceneGenerator(seed=7).scene(0, obj="apple", colour="red")
>>> [(j.label, j.adherent) for j in judge.judge(scene.image[None].repeat(2, 0), ["a red apple", "a green apple"])]
[('red apple', True), ('red apple', False)]
>>> judge.judge(np.zeros((1, 64, 64, 3), np.uint8), ["a black cat"])[0].abstained
True
>>> colour_in_prompt("an orange cat on a wooden table")
'orange'

Train it again, then measure it and write its card (about 10 minutes on one CPU core)::

    python -m pipeline.embedded.classifier --out pipeline/models/scene-classifier
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..judge import Judgement
from .scenes import COLOURS, OBJECT_COLOURS, OBJECTS, TABLES, SceneGenerator, object_in_prompt

__all__ = ["CLASSES", "REJECT", "NEGATIVE_FAMILIES", "DEFAULT_CLASSIFIER_DIR", "SceneJudge", "load_judge",
           "load_classifier", "TRAINING", "colour_in_prompt", "negatives", "wilson", "format_rate", "augment", "train_judge", "calibrate",
           "evaluate_scenes", "generator_adherence", "main"]

DEFAULT_CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "models" / "scene-classifier"
#: the reject class's name
REJECT = "reject"
#: every label the judge can give: "<colour> <object>" for each object and each of its colours, then "reject"
CLASSES: tuple[str, ...] = tuple(f"{c} {o}" for o in OBJECTS for c in OBJECT_COLOURS[o]) + (REJECT,)
#: out-of-distribution image families the judge must reject
NEGATIVE_FAMILIES: tuple[str, ...] = ("noise", "blank", "blurred", "half-drawn", "wrong shape", "empty table")

# seeds: the training scenes and negatives, the calibration split, and the fresh test split (never used in
# training: the diffusion model trains on scene seed 0, the old classifier on 100 and tested on 2000)
TRAIN_SEED, CALIBRATION_SEED, TEST_SEED = 100, 3000, 7001


def colour_in_prompt(prompt: str) -> str | None:
    """The colour word right before the prompt's object (``"a red apple ..."`` -> ``"red"``), or None."""
    words = prompt.lower().replace(",", " ").split()
    obj = object_in_prompt(prompt)
    if obj is None:
        return None
    i = len(words) - 1 - words[::-1].index(obj)
    return words[i - 1] if i > 0 and words[i - 1] in COLOURS else None


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n ((0, 1) when n = 0): :func:`phy.sweep.wilson_interval`.

    >>> [round(v, 3) for v in wilson(27, 29)]
    [0.78, 0.981]
    """
    from phy.sweep import wilson_interval

    return (0.0, 1.0) if n == 0 else wilson_interval(int(k), int(n))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got shape {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


class SceneJudge(nn.Module):
    """CNN over :data:`CLASSES` ("<colour> <object>" labels and "reject"), with an abstention threshold.

    Input of :meth:`forward`: float32 [N, 3, H, W] in [0, 1], any H, W (resampled to 32x32 by area averaging).
    Output: logits float32 [N, len(classes)].

    Parameters
    ----------
    classes : tuple of str
        Labels, the last one :data:`REJECT`.
    width : int
        Channels of the first block.
    threshold : float
        Abstain when the top non-reject softmax probability is below this (in [0, 1]).
    """

    def __init__(self, classes: tuple[str, ...] = CLASSES, width: int = 32, threshold: float = 0.0):
        super().__init__()
        if classes[-1] != REJECT:
            raise ValueError(f"the last class must be {REJECT!r}, got {classes[-1]!r}")
        self.classes = tuple(classes)
        self.width = width
        self.threshold = float(threshold)

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 2 * width))
        self.head = nn.Linear(2 * width, len(self.classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(32, 32), mode="area") if images.shape[-2:] != (32, 32) else images
        x = self.features(x * 2 - 1)
        return self.head(x.mean(dim=(2, 3)))

    @torch.no_grad()
    def scores(self, images: np.ndarray, batch_size: int = 256) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(top non-reject label, its probability, reject-class argmax) for uint8 images [N, H, W, 3]."""
        x = _to_tensor(images)
        self.eval()
        probs = torch.cat([self(x[i:i + batch_size]).softmax(dim=1) for i in range(0, len(x), batch_size)])
        top, idx = probs[:, :-1].max(dim=1)
        rejected = probs.argmax(dim=1) == len(self.classes) - 1
        return [self.classes[i] for i in idx.tolist()], top.numpy(), rejected.numpy()

    def see(self, images: np.ndarray, threshold: float | None = None) -> tuple[list[str | None], np.ndarray]:
        """(label or None when abstaining, confidence float [N]) for uint8 images [N, H, W, 3]."""
        t = self.threshold if threshold is None else threshold
        labels, confidence, rejected = self.scores(images)
        abstain = rejected | (confidence < t)
        return [None if a else label for label, a in zip(labels, abstain)], confidence

    def judge(self, images: np.ndarray, prompts: Sequence[str]) -> list[Judgement]:
        """One :class:`pipeline.judge.Judgement` per image: adherent = right object, right colour, not abstained."""
        labels, confidence = self.see(images)
        if isinstance(prompts, str) or len(prompts) != len(labels):
            raise ValueError(f"prompts must be a list of one prompt per image: got {len(labels)} images but "
                             f"{1 if isinstance(prompts, str) else len(prompts)} prompts")
        out = []
        for label, conf, prompt in zip(labels, confidence, prompts):
            obj, colour = object_in_prompt(prompt), colour_in_prompt(prompt)
            adherent = label is not None and obj is not None and label.split(" ")[1] == obj and \
                (colour is None or label.split(" ")[0] == colour)
            out.append(Judgement(label=label, adherent=bool(adherent), abstained=label is None, confidence=float(conf)))
        return out

    # the interface of the former object-only classifier (pipeline.chain, pipeline.grouping and
    # pipeline.embedded.measure call these)
    def classify(self, images: np.ndarray) -> list[str | None]:
        """Labels ``"<colour> <object>"`` (None where the judge abstains) for uint8 images [N, H, W, 3]."""
        return self.see(images)[0]

    def adherence(self, images: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """bool [N]: :attr:`Judgement.adherent` of each image to its prompt."""
        return np.array([j.adherent for j in self.judge(images, prompts)], dtype=bool)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps({"classes": list(self.classes), "width": self.width,
                                                        "threshold": self.threshold}, indent=1))


def load_judge(folder: str | Path | None = None) -> SceneJudge:
    """Load the shipped judge (or one saved with :meth:`SceneJudge.save`)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else DEFAULT_CLASSIFIER_DIR
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no scene judge in {folder} (expected config.json and model.safetensors); "
                                "train one with: python -m pipeline.embedded.classifier --out " + str(folder))
    config = json.loads((folder / "config.json").read_text())
    if config["classes"][-1] != REJECT:
        raise ValueError(f"{folder} holds the former object-only classifier; retrain it with "
                         f"python -m pipeline.embedded.classifier --out {folder}")
    model = SceneJudge(tuple(config["classes"]), config["width"], config.get("threshold", 0.0))
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval()


#: the former name (pipeline.chain and pipeline.embedded.measure load the judge through it)
load_classifier = load_judge


# ------------------------------------------------------------------ negatives
class _NegativeScenes(SceneGenerator):
    """The renderer's table and wall with no object, or with a shape that is none of the objects."""

    def render(self, index: int, kind: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(index), 77])
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        table = list(TABLES)[rng.integers(len(TABLES))]
        from .scenes import SIZES, WALLS

        wall, size = list(WALLS)[rng.integers(len(WALLS))], SIZES[rng.integers(len(SIZES))]
        return self._draw(rng, kind, colour, table, wall, size)

    def _draw_empty(self, img, x, y, cx, by, s, rgb, rng):
        pass

    def _draw_shape(self, img, x, y, cx, by, s, rgb, rng):
        r = 0.15 * s * rng.uniform(0.8, 1.3)
        cy = by - r
        dx, dy = np.abs(x - cx), np.abs(y - cy)
        kind = rng.integers(6)
        if kind == 0:  # triangle
            mask = (y < by) & (y > by - 2 * r) & (dx < 0.5 * (y - (by - 2 * r)))
        elif kind == 1:  # ring
            d = np.sqrt(dx ** 2 + dy ** 2)
            mask = (d < r) & (d > 0.55 * r)
        elif kind == 2:  # cross
            mask = ((dx < 0.3 * r) & (dy < r)) | ((dy < 0.3 * r) & (dx < r))
        elif kind == 3:  # tall bar
            mask = (dx < 0.25 * r) & (y > by - 2.6 * r) & (y < by)
        elif kind == 4:  # diamond
            mask = dx / r + dy / r < 1
        else:  # star-ish: a ring of spikes
            ang = np.arctan2(y - cy, x - cx)
            mask = np.sqrt(dx ** 2 + dy ** 2) < r * (0.55 + 0.45 * np.cos(5 * ang))
        self._paint(img, mask, rgb, x, y, cx, cy, r)


def _resize(x: torch.Tensor, size: int, out: int) -> torch.Tensor:
    return F.interpolate(F.interpolate(x, size=(size, size), mode="area"), size=(out, out), mode="bilinear",
                         align_corners=False)


def negatives(family: str, count: int, seed: int, resolution: int = 64) -> np.ndarray:
    """``count`` deterministic out-of-distribution images of one family: uint8 [count, H, W, 3].

    Families (:data:`NEGATIVE_FAMILIES`): ``noise`` (per-pixel uniform or Gaussian, or smooth random fields),
    ``blank`` (one uniform colour, black/grey/white included), ``blurred`` (a scene reduced to 2-6 pixels a
    side and blown up again), ``half-drawn`` (a scene mixed with 60-90% noise), ``wrong shape`` (the table and
    wall with a triangle, ring, cross, bar, diamond or star in an object colour), ``empty table``.

    >>> negatives("blank", 2, seed=0).shape
    (2, 64, 64, 3)
    """
    if family not in NEGATIVE_FAMILIES:
        raise ValueError(f"family must be one of {list(NEGATIVE_FAMILIES)}, got {family!r}")
    rng = np.random.default_rng([seed, NEGATIVE_FAMILIES.index(family)])
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    h = resolution
    if family in ("wrong shape", "empty table"):
        scenes = _NegativeScenes(seed=seed, resolution=h)
        kind = "shape" if family == "wrong shape" else "empty"
        return np.stack([scenes.render(i, kind) for i in range(count)])
    if family in ("blurred", "half-drawn"):
        images, _, _ = SceneGenerator(seed=seed + 17, resolution=h).batch(0, count)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        if family == "blurred":
            sizes = rng.choice([2, 3, 4, 6], count)
            x = torch.cat([_resize(x[i:i + 1], int(s), h) for i, s in enumerate(sizes)])
        else:
            keep = torch.from_numpy(rng.uniform(0.1, 0.4, (count, 1, 1, 1))).float()
            noise = 0.5 + 0.3 * torch.randn(x.shape, generator=gen)
            x = keep * x + (1 - keep) * noise
    elif family == "blank":
        rgb = torch.rand(count, 3, 1, 1, generator=gen)
        grey = torch.from_numpy(rng.uniform(size=count) < 0.4)
        levels = torch.from_numpy(rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], count)).float()
        rgb[grey] = levels[grey, None, None, None].expand(-1, 3, 1, 1)
        x = rgb.expand(count, 3, h, h) + 0.01 * torch.randn(count, 3, h, h, generator=gen)
    else:  # noise
        kinds = rng.integers(3, size=count)
        x = torch.empty(count, 3, h, h)
        for i, k in enumerate(kinds):
            if k == 0:
                x[i] = torch.rand(3, h, h, generator=gen)
            elif k == 1:
                x[i] = torch.rand(3, 1, 1, generator=gen) + 0.3 * torch.randn(3, h, h, generator=gen)
            else:
                g = int(rng.choice([2, 4, 8, 16]))
                field = torch.rand(1, 3, g, g, generator=gen)
                x[i] = F.interpolate(field, size=(h, h), mode="bilinear", align_corners=False)[0] + \
                    0.05 * torch.randn(3, h, h, generator=gen)
    return (x.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------ training
def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur, noise, brightness/contrast/colour jitter and small shifts (x in [0,1], [N,3,H,W])."""
    n = x.shape[0]
    r = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    # blur with a random-width Gaussian (diffusion samples are softer than the drawings)
    sigma = 1.2 * r(n)
    k = torch.arange(-2, 3).float()
    kernels = torch.exp(-k[None] ** 2 / (2 * sigma[:, None] ** 2 + 1e-6))
    kernels = kernels / kernels.sum(1, keepdim=True)
    xb = x.reshape(1, n * 3, *x.shape[2:])
    kh = kernels.repeat_interleave(3, 0)[:, None, None, :]
    xb = F.conv2d(F.pad(xb, (2, 2, 0, 0), mode="replicate"), kh, groups=n * 3)
    xb = F.conv2d(F.pad(xb, (0, 0, 2, 2), mode="replicate"), kh.transpose(2, 3), groups=n * 3)
    x = xb.reshape_as(x)
    gain = 0.8 + 0.4 * r(n, 1, 1, 1)
    tint = 0.9 + 0.2 * r(n, 3, 1, 1)
    x = (x - 0.5) * gain + 0.5 + 0.1 * (r(n, 1, 1, 1) - 0.5)
    x = x * tint + 0.06 * r(n, 1, 1, 1) * torch.randn(x.shape, generator=generator)
    shift = torch.randint(-3, 4, (2,), generator=generator).tolist()
    x = torch.roll(x, shifts=shift, dims=(2, 3))
    return x.clamp(0, 1)


def _labelled_scenes(seed: int, count: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Scenes of ``seed``: images uint8 [N,H,W,3], class indices into :data:`CLASSES`, (object, colour)."""
    gen = SceneGenerator(seed=seed)
    scenes = [gen.scene(i) for i in range(count)]
    truth = [(s.obj, s.colour) for s in scenes]
    labels = np.array([CLASSES.index(f"{c} {o}") for o, c in truth], dtype=np.int64)
    return np.stack([s.image for s in scenes]), labels, truth


def _negative_bank(count_per_family: int, seed: int) -> np.ndarray:
    return np.concatenate([negatives(f, count_per_family, seed) for f in NEGATIVE_FAMILIES])


#: the shipped judge's training settings (keyword arguments of :func:`train_judge`)
TRAINING = dict(seed=TRAIN_SEED, num_train=16000, num_negatives=1500, steps=1400, batch_size=64, negative_fraction=0.25)


def train_judge(seed: int = TRAINING["seed"], num_train: int = TRAINING["num_train"],
                num_negatives: int = TRAINING["num_negatives"], steps: int = TRAINING["steps"],
                batch_size: int = TRAINING["batch_size"],
                negative_fraction: float = TRAINING["negative_fraction"]) -> SceneJudge:
    """Train on scenes and negatives of ``seed`` (negatives form the reject class); threshold 0.

    Defaults: :data:`TRAINING`.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    images, labels, _ = _labelled_scenes(seed, num_train)
    bank = _negative_bank(num_negatives, seed)
    print(f"data: {num_train} scenes, {len(bank)} negatives ({time.time() - t0:.0f} s)", flush=True)
    x_pos, y_pos = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)
    x_neg = torch.from_numpy(bank).permute(0, 3, 1, 2).contiguous()
    n_neg = int(round(batch_size * negative_fraction))
    model = SceneJudge()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    reject = torch.full((n_neg,), len(CLASSES) - 1, dtype=torch.int64)
    model.train()
    for step in range(steps):
        ip = torch.randint(len(x_pos), (batch_size - n_neg,), generator=gen)
        ineg = torch.randint(len(x_neg), (n_neg,), generator=gen)
        x = augment(torch.cat([x_pos[ip], x_neg[ineg]]).float() / 255.0, gen)
        loss = F.cross_entropy(model(x), torch.cat([y_pos[ip], reject]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    return model.eval()


def calibrate(model: SceneJudge, seed: int = CALIBRATION_SEED, num_scenes: int = 1000,
              num_negatives: int = 200) -> dict:
    """Choose the abstention threshold on a held-out split, by measurement.

    Held-out scenes are judged as drawn and as augmented (a stand-in for softer
    generated images); held-out negatives of every family. For each candidate
    threshold the cost is the mean false-accept rate over the families plus the
    false-reject rate on the augmented scenes; the cheapest wins (ties: the
    lowest threshold). Threshold 0 is the reject class alone.
    """
    images, labels, _ = _labelled_scenes(seed, num_scenes)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    soft = augment(x, torch.Generator().manual_seed(seed))
    soft = (soft.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    neg = {f: negatives(f, num_negatives, seed) for f in NEGATIVE_FAMILIES}
    scored = {"scenes": model.scores(images), "augmented": model.scores(soft)}
    scored.update({f: model.scores(v) for f, v in neg.items()})
    rows = []
    for t in [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]:
        accept = {k: ~rej & (conf >= t) for k, (_, conf, rej) in scored.items()}
        far = {f: float(accept[f].mean()) for f in NEGATIVE_FAMILIES}
        row = dict(threshold=t, false_reject_scenes=float(1 - accept["scenes"].mean()),
                   false_reject_augmented=float(1 - accept["augmented"].mean()), false_accept=far)
        row["cost"] = float(np.mean(list(far.values())) + row["false_reject_augmented"])
        rows.append(row)
    best = min(rows, key=lambda r: (round(r["cost"], 9), r["threshold"]))
    return dict(threshold=best["threshold"], seed=seed, num_scenes=num_scenes, num_negatives_per_family=num_negatives,
                candidates=rows)


# ------------------------------------------------------------------ measurement
def _rate(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return dict(k=int(k), n=int(n), rate=k / n if n else float("nan"), ci95=[lo, hi])


def evaluate_scenes(model: SceneJudge, seed: int = TEST_SEED, num_scenes: int = 2700,
                    num_negatives: int = 300) -> dict:
    """Accuracy (label right and not abstained) per object and per colour on fresh scenes; false-accept per family."""
    images, _, truth = _labelled_scenes(seed, num_scenes)
    labels, _ = model.see(images)
    right = np.array([label == f"{c} {o}" for label, (o, c) in zip(labels, truth)])
    abstained = np.array([label is None for label in labels])
    obj_right = np.array([label is not None and label.split(" ")[1] == o for label, (o, _) in zip(labels, truth)])
    per_object = {o: _rate(right[[t[0] == o for t in truth]].sum(), sum(t[0] == o for t in truth)) for o in OBJECTS}
    colours = sorted({c for cs in OBJECT_COLOURS.values() for c in cs}, key=list(COLOURS).index)
    per_colour = {c: _rate(right[[t[1] == c for t in truth]].sum(), sum(t[1] == c for t in truth)) for c in colours}
    false_accept = {}
    for f in NEGATIVE_FAMILIES:
        seen, _ = model.see(negatives(f, num_negatives, seed + 1))
        false_accept[f] = _rate(sum(s is not None for s in seen), num_negatives)
    all_neg = sum(v["k"] for v in false_accept.values()), sum(v["n"] for v in false_accept.values())
    return dict(seed=seed, accuracy=_rate(right.sum(), len(right)), object_accuracy=_rate(obj_right.sum(), len(right)),
                abstained=_rate(abstained.sum(), len(right)), per_object=per_object, per_colour=per_colour,
                false_accept=false_accept, false_accept_all=_rate(*all_neg), negatives_seed=seed + 1)


def adherence_grid(seeds: Sequence[int] = (0, 1, 2, 3)) -> list[tuple[str, str, str, int]]:
    """(object, colour, prompt, seed): every object in each of its colours (tables in turn) x ``seeds``."""
    from .scenes import make_caption

    tables = ("wooden", "white", "blue")
    pairs = [(o, c) for o in OBJECTS for c in OBJECT_COLOURS[o]]
    return [(o, c, make_caption(c, o, tables[i % len(tables)]), s) for i, (o, c) in enumerate(pairs) for s in seeds]


def generator_adherence(pipe, judge: SceneJudge, guidance_scale: float, seeds: Sequence[int] = (0, 1, 2, 3),
                        num_inference_steps: int = 20) -> dict:
    """Adherence of the generator's images (:func:`adherence_grid`) as the fraction of all generations.

    Generated with :class:`pipeline.split.SplitDiffusion` (the experiments' loop, Euler ancestral). Also per
    object and per colour, the abstention rate and what the judge saw for each object.
    """
    from ..split import SplitDiffusion

    grid = adherence_grid(seeds)
    sd = SplitDiffusion(pipe)
    images = np.concatenate([sd.generate([p for _, _, p, _ in grid[i:i + 32]], num_inference_steps,
                                         seed=[s for *_, s in grid[i:i + 32]], guidance_scale=guidance_scale)
                             for i in range(0, len(grid), 32)])
    verdicts = judge.judge(images, [p for _, _, p, _ in grid])
    ok = np.array([v.adherent for v in verdicts])
    objs, cols = np.array([g[0] for g in grid]), np.array([g[1] for g in grid])
    seen: dict[str, dict[str, int]] = {o: {} for o in OBJECTS}
    for (o, *_), v in zip(grid, verdicts):
        key = v.label or "abstained"
        seen[o][key] = seen[o].get(key, 0) + 1
    return dict(guidance_scale=guidance_scale, num_inference_steps=num_inference_steps, seeds=list(seeds),
                adherence=_rate(ok.sum(), len(ok)),
                abstained=_rate(sum(v.abstained for v in verdicts), len(ok)),
                object_right=_rate(sum(v.label is not None and v.label.split(" ")[1] == g[0]
                                       for g, v in zip(grid, verdicts)), len(ok)),
                per_object={o: _rate(ok[objs == o].sum(), int((objs == o).sum())) for o in OBJECTS},
                per_colour={c: _rate(ok[cols == c].sum(), int((cols == c).sum())) for c in dict.fromkeys(cols)},
                seen=seen)


# ------------------------------------------------------------------ card
def format_rate(r: dict) -> str:
    """``"93.1% (27/29; 95% CI 78.0%–98.1%)"`` from a rate record (k, n, rate, ci95)."""
    return f"{r['rate']:.1%} ({r['k']}/{r['n']}; 95% CI {r['ci95'][0]:.1%}–{r['ci95'][1]:.1%})"


def write_card(folder: Path, record: dict) -> None:
    """README.md of the judge from its ``evaluation.json`` record (every number comes from the record)."""
    tr, cal, ev = record["training"], record["calibration"], record["scenes"]
    chosen = next(r for r in cal["candidates"] if r["threshold"] == cal["threshold"])
    zero = cal["candidates"][0]
    fam = lambda r: ", ".join(f"{f} {v:.1%}" for f, v in r["false_accept"].items())  # noqa: E731
    obj_rows = "\n".join(f"| {o} | {format_rate(v)} |" for o, v in ev["per_object"].items())
    col_rows = "\n".join(f"| {c} | {format_rate(v)} |" for c, v in ev["per_colour"].items())
    neg_rows = "\n".join(f"| {f} | {format_rate(v)} |" for f, v in ev["false_accept"].items())
    gen_text = "Not measured (run without `--no-generator`)."
    if record.get("generator"):
        parts = []
        for g in record["generator"]:
            rows = "\n".join(f"| {o} | {format_rate(v)} | " + ", ".join(f"{k}: {n}" for k, n in sorted(
                g["seen"][o].items(), key=lambda kv: -kv[1])) + " |" for o, v in g["per_object"].items())
            parts.append(f"""### Guidance scale {g['guidance_scale']}

**Adherence: {format_rate(g['adherence'])}** of all generations (right object and right colour, not abstained).
Right object (any colour, not abstained): {format_rate(g['object_right'])}. Abstained: {format_rate(g['abstained'])}.

| object | adherence | what the judge saw |
|---|---|---|
{rows}
""")
        g0 = record["generator"][0]
        gen_text = (f"Images of the shipped generator (`pipeline.loading.load_pipeline()`, "
                    f"`pipeline.split.SplitDiffusion.generate`, Euler ancestral, {g0['num_inference_steps']} steps), "
                    f"every object in each of its colours (tables wooden/white/blue in turn) x seeds {g0['seeds']}.\n\n"
                    + "\n".join(parts))
    text = f"""# scene-classifier — the adherence judge of distdiff

`pipeline.embedded.classifier.load_judge()` loads it: a `pipeline.judge.Judge`
that names the object *and* its colour in a 64x64 scene of
`pipeline.embedded.scenes` ({len(CLASSES) - 1} labels "<colour> <object>") or
abstains. An image is adherent to a prompt when the judge does not abstain,
sees the prompt's object, and sees the colour the prompt names.

This card is written by `python -m pipeline.embedded.classifier` (which trains,
calibrates and measures); `--measure-only` re-measures the shipped weights. No
number here is typed by hand.

## Training

* {tr['num_train']} scenes of seed {tr['seed']}, {tr['num_negatives_per_family']} negatives of each family
  ({', '.join(NEGATIVE_FAMILIES)}) as an explicit "{REJECT}" class ({tr['negative_fraction']:.0%} of each batch);
  blur / noise / colour-jitter / shift augmentation on both
* {tr['steps']} steps of batch {tr['batch_size']}, AdamW, one-cycle lr 2e-3; {tr['seconds']:.0f} s wall clock
  (data and training) on {tr['threads']} torch thread(s) of a CPU shared with other jobs; seeded and deterministic

## Abstention: the reject class, and a threshold chosen by measurement

The judge abstains when its reject class wins or when the top label's softmax
probability is below a threshold. The threshold was chosen on a held-out split
(seed {cal['seed']}: {cal['num_scenes']} scenes judged as drawn and augmented, {cal['num_negatives_per_family']}
negatives per family) by minimising mean false-accept rate + false-reject rate on
the augmented scenes over {[r['threshold'] for r in cal['candidates']]}:
**threshold {cal['threshold']}**.

* reject class alone (threshold 0): false reject {zero['false_reject_scenes']:.1%} (scenes), {zero['false_reject_augmented']:.1%} (augmented); false accept {fam(zero)}
* chosen (threshold {chosen['threshold']}): false reject {chosen['false_reject_scenes']:.1%} (scenes), {chosen['false_reject_augmented']:.1%} (augmented); false accept {fam(chosen)}

## Accuracy on fresh scenes (seed {ev['seed']}, never used in training or calibration)

Right = the judge gives the exact "<colour> <object>" label (an abstention counts as wrong).
Overall **{format_rate(ev['accuracy'])}**; right object (any colour) {format_rate(ev['object_accuracy'])};
abstained {format_rate(ev['abstained'])}. Intervals are 95% Wilson intervals.

| object | accuracy |
|---|---|
{obj_rows}

| colour | accuracy |
|---|---|
{col_rows}

## False-accept rate on out-of-distribution negatives (seed {ev['negatives_seed']})

The fraction of each family the judge does *not* reject. All families: **{format_rate(ev['false_accept_all'])}**.

| family | false accept |
|---|---|
{neg_rows}

Families: noise (per-pixel uniform or Gaussian, or smooth random fields), blank
(one colour; black, grey and white included), blurred (a scene shrunk to 2-6
pixels a side and blown up), half-drawn (a scene mixed with 60-90% noise), wrong
shape (table and wall with a triangle, ring, cross, bar, diamond or star in an
object colour), empty table.

## Adherence of the shipped generator's images

{gen_text}
## Limits

Trained and calibrated on the renderer's scenes and synthetic negatives only;
the generator's images are softer and sometimes distorted, so its abstentions
there are part of the generator's measured adherence. A judge for a closed
world of {len(OBJECTS)} objects: it knows nothing of real photographs.
Measurement took {record['measure_seconds']:.0f} s wall clock on the same shared CPU.
"""
    (Path(folder) / "README.md").write_text(text)


def measure(folder: Path, training: dict, generator: bool = True, seeds: Sequence[int] = (0, 1, 2, 3)) -> dict:
    """Measure the judge saved in ``folder`` and write ``evaluation.json`` and ``README.md`` there."""
    t0 = time.time()
    judge = load_judge(folder)
    calibration = json.loads((Path(folder) / "calibration.json").read_text())
    print("fresh scenes and negatives ...", flush=True)
    record = dict(training=training, calibration=calibration, scenes=evaluate_scenes(judge))
    record["generator"] = []
    if generator:
        from ..loading import load_pipeline

        pipe = load_pipeline()
        for scale in (7.5, 4.0):
            print(f"generator images, guidance {scale} ...", flush=True)
            record["generator"].append(generator_adherence(pipe, judge, scale, seeds))
    record["measure_seconds"] = time.time() - t0
    (Path(folder) / "evaluation.json").write_text(json.dumps(record, indent=1))
    write_card(folder, record)
    return record


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train, calibrate and measure the scene judge; write its model card.")
    p.add_argument("--out", type=Path, default=DEFAULT_CLASSIFIER_DIR)
    p.add_argument("--seed", type=int, default=TRAINING["seed"])
    p.add_argument("--steps", type=int, default=TRAINING["steps"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--measure-only", action="store_true", help="measure the weights in --out, write the card")
    p.add_argument("--no-generator", action="store_true", help="skip the generator's images")
    p.add_argument("--card-only", action="store_true", help="rewrite README.md from evaluation.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.card_only:
        write_card(args.out, json.loads((args.out / "evaluation.json").read_text()))
        return
    if not args.measure_only:
        t0 = time.time()
        settings = dict(TRAINING, seed=args.seed, steps=args.steps)
        model = train_judge(**settings)
        training = {k: v for k, v in settings.items() if k != "num_negatives"}
        training.update(num_negatives_per_family=settings["num_negatives"], threads=args.threads,
                        seconds=time.time() - t0)
        calibration = calibrate(model)
        model.threshold = calibration["threshold"]
        model.save(args.out)
        (args.out / "training.json").write_text(json.dumps(training, indent=1))
        (args.out / "calibration.json").write_text(json.dumps(calibration, indent=1))
        print(f"threshold {model.threshold}", flush=True)
    training = json.loads((args.out / "training.json").read_text())
    record = measure(args.out, training, generator=not args.no_generator)
    s = record["scenes"]
    print(json.dumps(dict(accuracy=s["accuracy"], false_accept=s["false_accept_all"],
                          generator={g["guidance_scale"]: g["adherence"] for g in record["generator"]})))


if __name__ == "__main__":
    main()
