"""A small CNN that names the object in a scene: the project's prompt-adherence judge.

Trained by the project on the procedural scenes of :mod:`pipeline.embedded.scenes`
(augmented with blur, noise and colour jitter so that it also reads the softer
images a diffusion model makes) and shipped in ``pipeline/models/scene-classifier``.

Example
-------
>>> import numpy as np
>>> from pipeline.embedded.classifier import load_classifier
>>> from pipeline.embedded.scenes import SceneGenerator
>>> clf = load_classifier()                                  # doctest: +SKIP
>>> scene = SceneGenerator(seed=7).scene(0, obj="lemon")
>>> clf.classify(scene.image[None])                          # doctest: +SKIP
['lemon']
>>> clf.adherence(scene.image[None], ["a yellow lemon on a table"])  # doctest: +SKIP
array([ True])

Train it again (about 5 minutes on one CPU core)::

    python -m pipeline.embedded.classifier --out pipeline/models/scene-classifier
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .scenes import OBJECTS, SceneGenerator, object_in_prompt

DEFAULT_CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "models" / "scene-classifier"


class SceneClassifier(nn.Module):
    """CNN classifier over :data:`pipeline.embedded.scenes.OBJECTS`.

    Input: float32 [N, 3, H, W] in [0, 1], any H, W (resampled to 32x32 by area averaging).
    Output: logits float32 [N, len(classes)].
    """

    def __init__(self, classes: tuple[str, ...] = OBJECTS, width: int = 32):
        super().__init__()
        self.classes = tuple(classes)
        self.width = width

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
    def classify(self, images: np.ndarray) -> list[str]:
        """Object names for uint8 images [N, H, W, 3] (or one image [H, W, 3])."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 [N, H, W, 3], got shape {images.shape}")
        self.eval()
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        labels = self(x).argmax(dim=1).tolist()
        return [self.classes[i] for i in labels]

    def adherence(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        """bool [N]: the classifier names the object that the prompt asks for."""
        names = self.classify(images)
        if len(names) != len(prompts):
            raise ValueError(f"got {len(names)} images but {len(prompts)} prompts")
        return np.array([name == object_in_prompt(p) for name, p in zip(names, prompts)])

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps({"classes": list(self.classes), "width": self.width}))


def load_classifier(folder: str | Path | None = None) -> SceneClassifier:
    """Load the shipped classifier (or one saved with :meth:`SceneClassifier.save`)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else DEFAULT_CLASSIFIER_DIR
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no scene classifier in {folder} (expected config.json and model.safetensors); "
                                "train one with: python -m pipeline.embedded.classifier --out " + str(folder))
    config = json.loads((folder / "config.json").read_text())
    model = SceneClassifier(tuple(config["classes"]), config["width"])
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval()


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


def train_classifier(out: Path, seed: int = 100, num_train: int = 16000, steps: int = 1000,
                     batch_size: int = 64, num_test: int = 2000, test_seed: int = 2000) -> dict:
    """Train on scenes of ``seed``, test on fresh scenes of ``test_seed``; save to ``out``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    images, _, labels = SceneGenerator(seed=seed).batch(0, num_train)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y_all = torch.from_numpy(labels)
    model = SceneClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    t0 = time.time()
    model.train()
    for step in range(steps):
        idx = torch.randint(num_train, (batch_size,), generator=gen)
        x = augment(x_all[idx].float() / 255.0, gen)
        loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    test_images, _, test_labels = SceneGenerator(seed=test_seed).batch(0, num_test)
    predicted = np.array([OBJECTS.index(n) for n in model.classify(test_images)])
    accuracy = float((predicted == test_labels).mean())
    model.save(out)
    info = dict(accuracy_fresh_scenes=accuracy, num_test=num_test, test_seed=test_seed, train_seed=seed,
                num_train=num_train, steps=steps, batch_size=batch_size, train_seconds=time.time() - t0)
    (Path(out) / "training.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info))
    return info


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train the scene classifier.")
    p.add_argument("--out", type=Path, default=DEFAULT_CLASSIFIER_DIR)
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_classifier(args.out, seed=args.seed, steps=args.steps)


if __name__ == "__main__":
    main()
