"""Compute accounting of collaborative generation, in UNet evaluations.

One *UNet evaluation* is one forward pass of the UNet for one image;
classifier-free guidance costs two per denoising step (conditional and
unconditional), so ``f = 2`` with guidance and ``f = 1`` without. VAE decoding
and text encoding are counted separately (one each per image) and are the
same with and without sharing.

For a group of ``R`` receivers that share ``k`` of ``N`` steps computed once
by a sender (an edge server or one device):

* sender: ``k * f`` evaluations (once for the group),
* each receiver: ``(N - k) * f``,
* every device generating alone: ``R * N * f`` in total,
* fraction saved: ``1 - (k + R (N - k)) / (R N) = k (R - 1) / (R N)``.

Example
-------
>>> from pipeline.compute import ComputeAccount
>>> c = ComputeAccount(num_inference_steps=11, num_shared_steps=5, num_receivers=4, guidance=True)
>>> c.unet_evals_sender, c.unet_evals_receiver, c.unet_evals_alone
(10, 12, 22)
>>> round(c.compute_saved_fraction, 4)
0.3409
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ComputeAccount"]


@dataclass(frozen=True)
class ComputeAccount:
    """UNet-evaluation counts of one shared group.

    Parameters
    ----------
    num_inference_steps : int
        ``N``, total denoising steps per image.
    num_shared_steps : int
        ``k``, steps run once by the sender, ``0 <= k <= N``.
    num_receivers : int
        ``R >= 1``, devices that finish the shared state.
    guidance : bool
        Classifier-free guidance on (two evaluations per step).
    """

    num_inference_steps: int
    num_shared_steps: int
    num_receivers: int
    guidance: bool = True

    def __post_init__(self):
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an int >= 1, got {self.num_inference_steps!r}")
        if not isinstance(self.num_shared_steps, int) or not 0 <= self.num_shared_steps <= self.num_inference_steps:
            raise ValueError(f"num_shared_steps must be an int in [0, {self.num_inference_steps}], "
                             f"got {self.num_shared_steps!r}")
        if not isinstance(self.num_receivers, int) or self.num_receivers < 1:
            raise ValueError(f"num_receivers must be an int >= 1, got {self.num_receivers!r}")

    @property
    def evals_per_step(self) -> int:
        return 2 if self.guidance else 1

    @property
    def unet_evals_sender(self) -> int:
        """UNet evaluations of the shared steps (once per group)."""
        return self.num_shared_steps * self.evals_per_step

    @property
    def unet_evals_receiver(self) -> int:
        """UNet evaluations of one receiver."""
        return (self.num_inference_steps - self.num_shared_steps) * self.evals_per_step

    @property
    def unet_evals_alone(self) -> int:
        """UNet evaluations of one device generating alone."""
        return self.num_inference_steps * self.evals_per_step

    @property
    def unet_evals_group(self) -> int:
        """Sender plus all receivers."""
        return self.unet_evals_sender + self.num_receivers * self.unet_evals_receiver

    @property
    def compute_saved_fraction(self) -> float:
        """``1 - group / (R * alone)``: the fraction of UNet evaluations saved by sharing."""
        return 1.0 - self.unet_evals_group / (self.num_receivers * self.unet_evals_alone)

    @property
    def receiver_saved_fraction(self) -> float:
        """``k / N``: the fraction of its own work each receiver saves."""
        return self.num_shared_steps / self.num_inference_steps

    def to_row(self) -> dict:
        return {"unet_evals_sender": self.unet_evals_sender, "unet_evals_receiver": self.unet_evals_receiver,
                "unet_evals_alone": self.unet_evals_alone, "unet_evals_group": self.unet_evals_group,
                "compute_saved_fraction": self.compute_saved_fraction,
                "receiver_compute_saved_fraction": self.receiver_saved_fraction}
