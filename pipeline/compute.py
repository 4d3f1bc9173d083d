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

A receiver that cannot use the state (its header was lost on the link) falls
back to generating alone: it runs all ``N * f`` evaluations, saves nothing,
and the sender's ``k * f`` were spent for it in vain. With ``F`` such
receivers the group costs ``k f + (R - F)(N - k) f + F N f``, and the
fraction saved, ``1 - group / (R N f)``, turns negative when every receiver
falls back (``F = R``: ``-k / (R N)``).

Example
-------
>>> from pipeline.compute import ComputeAccount
>>> c = ComputeAccount(num_inference_steps=11, num_shared_steps=5, num_receivers=4, guidance=True)
>>> c.unet_evals_sender, c.unet_evals_receiver, c.unet_evals_alone
(10, 12, 22)
>>> round(c.compute_saved_fraction, 4)
0.3409
>>> lost = ComputeAccount(11, 5, 4, guidance=True, num_fallbacks=4)   # every header lost
>>> lost.unet_evals_group, round(lost.compute_saved_fraction, 4), lost.to_row(fallback=True)["receiver_compute_saved_fraction"]
(98, -0.1136, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ComputeAccount", "uses_cfg", "evals_per_step"]


def uses_cfg(guidance_scale: float, time_cond_proj_dim: int | None = None) -> bool:
    """Whether classifier-free guidance runs (the one rule, as diffusers' ``do_classifier_free_guidance``).

    On when ``guidance_scale > 1`` and the UNet is not guidance-distilled
    (``time_cond_proj_dim`` None: no guidance embedding).

    >>> uses_cfg(7.5), uses_cfg(1.0), uses_cfg(7.5, time_cond_proj_dim=256)
    (True, False, False)
    """
    return float(guidance_scale) > 1.0 and time_cond_proj_dim is None


def evals_per_step(guidance_scale: float, time_cond_proj_dim: int | None = None) -> int:
    """UNet evaluations per denoising step and image: 2 with classifier-free guidance, else 1."""
    return 2 if uses_cfg(guidance_scale, time_cond_proj_dim) else 1


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
        Classifier-free guidance on (two evaluations per step; see :func:`uses_cfg`).
    num_fallbacks : int
        ``F``, receivers that could not use the state and generated alone, ``0 <= F <= R``.
    """

    num_inference_steps: int
    num_shared_steps: int
    num_receivers: int
    guidance: bool = True
    num_fallbacks: int = 0

    def __post_init__(self):
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an int >= 1, got {self.num_inference_steps!r}")
        if not isinstance(self.num_shared_steps, int) or not 0 <= self.num_shared_steps <= self.num_inference_steps:
            raise ValueError(f"num_shared_steps must be an int in [0, {self.num_inference_steps}], "
                             f"got {self.num_shared_steps!r}")
        if not isinstance(self.num_receivers, int) or self.num_receivers < 1:
            raise ValueError(f"num_receivers must be an int >= 1, got {self.num_receivers!r}")
        if not isinstance(self.num_fallbacks, int) or not 0 <= self.num_fallbacks <= self.num_receivers:
            raise ValueError(f"num_fallbacks must be an int in [0, num_receivers={self.num_receivers}], "
                             f"got {self.num_fallbacks!r}")

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
        """Sender plus all receivers (those that fell back count all ``N`` steps)."""
        using = self.num_receivers - self.num_fallbacks
        return self.unet_evals_sender + using * self.unet_evals_receiver + self.num_fallbacks * self.unet_evals_alone

    @property
    def compute_saved_fraction(self) -> float:
        """``1 - group / (R * alone)``: the fraction of UNet evaluations saved by sharing."""
        return 1.0 - self.unet_evals_group / (self.num_receivers * self.unet_evals_alone)

    @property
    def receiver_saved_fraction(self) -> float:
        """``k / N``: the fraction of its own work a receiver that uses the state saves."""
        return self.num_shared_steps / self.num_inference_steps

    def to_row(self, fallback: bool = False) -> dict:
        """The columns of one receiver's row; ``fallback``: this receiver generated alone (saved 0)."""
        return {"unet_evals_sender": self.unet_evals_sender,
                "unet_evals_receiver": self.unet_evals_alone if fallback else self.unet_evals_receiver,
                "unet_evals_alone": self.unet_evals_alone, "unet_evals_group": self.unet_evals_group,
                "compute_saved_fraction": self.compute_saved_fraction,
                "receiver_compute_saved_fraction": 0.0 if fallback else self.receiver_saved_fraction,
                "num_fallback_receivers": self.num_fallbacks}
