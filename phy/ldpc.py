"""5G LDPC decoding with early stopping, on top of Sionna's decoder.

Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` always runs a fixed
number of belief-propagation (BP) iterations on every codeword of a batch.
:class:`EarlyStopLDPC5GDecoder` is that decoder with two changes to the BP
stage only (rate recovery, pruning, the node update rules and the output
format are Sionna's own code):

1. **Early stopping.**  After every ``check_every`` iterations the hard
   decisions of each codeword are checked against the parity-check matrix.
   A codeword whose checks all hold is *retired*: its output is frozen and it
   leaves the batch, and the remaining codewords continue exactly from their
   decoder state (the variable-to-check messages).  Decoding ends when all
   codewords are retired or ``num_iter`` iterations have run.
2. **Fewer index operations.**  Sionna moves the messages between the
   check-node and variable-node views with six gather/scatter operations per
   iteration; the same permutations compose into two gathers.  The composed
   indices are derived from Sionna's own index buffers, so the messages, and
   therefore every output value, are bit-identical to Sionna's decoder run for
   the same number of iterations (``early_stop=False`` reproduces
   :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` exactly; see the tests).

Only the flooding schedule without callbacks is supported.

LLR convention (Sionna's): inputs and soft outputs are logits
``log(p(b=1)/p(b=0))``, i.e. positive means bit 1.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder, LDPCBPDecoder

__all__ = ["EarlyStopLDPC5GDecoder"]


class _EarlyStopBP(LDPCBPDecoder):
    """BP stage with composed gathers and early stopping (a mixin).

    It sits between :class:`LDPC5GDecoder` and :class:`LDPCBPDecoder` in the
    method resolution order of :class:`EarlyStopLDPC5GDecoder`, so that the
    5G wrapper's ``super().call(llr_5g, ...)`` lands here.
    """

    def _build_composed_indices(self) -> None:
        """Compose Sionna's gather/scatter index buffers into two gathers."""
        dev = self._v2c_perm.device
        v2c_perm = self._v2c_perm.long().cpu().numpy()
        v2c_perm_inv = self._v2c_perm_inv.long().cpu().numpy()
        cn_gather = self._cn_gather_idx.long().cpu().numpy()  # [num_cns, dc]
        vn_gather = self._vn_gather_idx.long().cpu().numpy()  # [num_vns, dv]
        num_edges = self._num_edges

        # CN-ordered edge -> flat position in the padded CN layout.
        cn_pos = np.empty(num_edges, dtype=np.int64)
        cn_pos[self._cn_valid_edge_idx.long().cpu().numpy()] = (
            self._cn_valid_positions.long().cpu().numpy()
        )
        # VN-ordered edge -> flat position in the padded VN layout.
        vn_pos = np.empty(num_edges, dtype=np.int64)
        vn_pos[self._vn_valid_edge_idx.long().cpu().numpy()] = (
            self._vn_valid_positions.long().cpu().numpy()
        )

        # padded CN position -> VN-ordered edge (as in Sionna's _gather_to_cn)
        a_idx = v2c_perm[cn_gather.reshape(-1)]
        # padded VN position -> padded CN position (scatter_from_cn+gather_to_vn)
        b_idx = cn_pos[v2c_perm_inv[vn_gather.reshape(-1)]]
        # padded CN position -> padded VN position (scatter_from_vn+gather_to_cn)
        c_idx = vn_pos[a_idx]
        # padded CN position -> variable node index (first iteration, syndrome)
        vn_of_cn = self._vn_idx_t.long().cpu().numpy()[a_idx]

        self.register_buffer("_es_vn_of_cn", torch.as_tensor(vn_of_cn, device=dev), persistent=False)
        self.register_buffer("_es_cn2vn", torch.as_tensor(b_idx, device=dev), persistent=False)
        self.register_buffer("_es_vn2cn", torch.as_tensor(c_idx, device=dev), persistent=False)

    def _syndrome_ok(self, x_tot: torch.Tensor) -> torch.Tensor:
        """True for the codewords whose hard decisions satisfy all checks.

        :param x_tot: [batch, num_vns] LLRs (positive means bit 0).
        :output ok: [batch] bool.
        """
        hard = (x_tot <= 0).to(x_tot.dtype)
        bits = hard.index_select(1, self._es_vn_of_cn).view(
            hard.shape[0], self._num_cns, self._max_cn_degree
        )
        parity = (bits * self._cn_mask).sum(dim=2)
        return (torch.remainder(parity, 2.0) == 0).all(dim=1)

    def call(  # pylint: disable=arguments-differ
        self,
        llr_ch: torch.Tensor,
        /,
        *,
        num_iter: Optional[int] = None,
        msg_v2c: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        if msg_v2c is not None:
            raise ValueError("EarlyStopLDPC5GDecoder does not accept an external decoder state")
        if num_iter is None:
            num_iter = self._num_iter
        if self._llr_max is not None:
            llr_ch = llr_ch.clamp(-self._llr_max, self._llr_max)
        llr = llr_ch.reshape(-1, self._num_vns) * -1.0  # true LLRs
        batch = llr.shape[0]
        ncn, dc = self._num_cns, self._max_cn_degree
        nvn, dv = self._num_vns, self._max_vn_degree

        out = llr  # x_hat of codewords that run zero iterations
        iterations = torch.zeros(batch, dtype=torch.int32, device=llr.device)
        active = torch.arange(batch, device=llr.device)
        llr_a = llr
        x_tot = llr
        msg_vn_flat = None  # padded VN layout, [active, nvn*dv]
        retired_any = False
        it = 0
        while it < num_iter and llr_a.shape[0] > 0:
            bs = llr_a.shape[0]
            if msg_vn_flat is None:
                msg_cn = llr_a.index_select(1, self._es_vn_of_cn)
            else:
                msg_cn = msg_vn_flat.index_select(1, self._es_vn2cn)
            msg_cn = msg_cn.view(bs, ncn, dc) * self._cn_mask
            msg_cn_out = self._cn_update(msg_cn, self._cn_mask, self._llr_max)
            msg_vn = msg_cn_out.reshape(bs, ncn * dc).index_select(1, self._es_cn2vn)
            msg_vn = msg_vn.view(bs, nvn, dv) * self._vn_mask
            msg_vn_out, x_tot = self._vn_update(msg_vn, self._vn_mask, llr_a, self._llr_max)
            msg_vn_flat = msg_vn_out.reshape(bs, nvn * dv)
            it += 1

            if self._es_enabled and (it % self._es_check_every == 0) and it < num_iter:
                ok = self._syndrome_ok(x_tot)
                if bool(ok.any()):
                    done = active[ok]
                    if not retired_any:
                        out = llr.clone()
                        retired_any = True
                    out = _index_put_rows(out, done, x_tot[ok])
                    iterations = iterations.index_fill(0, done, it)
                    keep = ~ok
                    active = active[keep]
                    llr_a = llr_a[keep]
                    msg_vn_flat = msg_vn_flat[keep]
                    x_tot = x_tot[keep]

        if active.shape[0] > 0:
            iterations = iterations.index_fill(0, active, it)
            if retired_any:
                out = _index_put_rows(out, active, x_tot)
            else:
                out = x_tot
        self.last_iterations = iterations

        if self._hard_out:
            return (out <= 0).to(self.dtype).reshape(llr_ch.shape)
        return (out * -1.0).reshape(llr_ch.shape)


def _index_put_rows(dst: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Write ``values`` into the rows ``rows`` of ``dst``.

    In place when no gradient is being recorded, out of place (and therefore
    differentiable) otherwise.
    """
    if torch.is_grad_enabled() and (dst.requires_grad or values.requires_grad):
        return dst.index_copy(0, rows, values)
    dst.index_copy_(0, rows, values)
    return dst


class EarlyStopLDPC5GDecoder(LDPC5GDecoder, _EarlyStopBP):
    r"""5G LDPC BP decoder that retires codewords whose parity checks hold.

    A drop-in replacement for :class:`sionna.phy.fec.ldpc.LDPC5GDecoder`
    (flooding schedule, no callbacks) that stops iterating on each codeword as
    soon as its hard decisions form a valid codeword, and resumes the others
    exactly from their decoder state.  With ``early_stop=False`` its output is
    bit-identical to Sionna's decoder with the same ``cn_update`` and
    ``num_iter``.

    :param encoder: the :class:`~sionna.phy.fec.ldpc.LDPC5GEncoder` of the code.
    :param num_iter: maximum number of BP iterations per codeword.
    :param cn_update: check-node rule: ``"boxplus"`` (exact, tanh-based,
        the default here), ``"boxplus-phi"`` (Sionna's default),
        ``"minsum"`` or ``"offset-minsum"``.
    :param early_stop: retire codewords whose parity checks hold.
    :param check_every: run the parity check every this many iterations.
    :param hard_out: return hard decisions (float 0/1) instead of logits.
    :param return_infobits: return only the ``k`` information bits.
    :param llr_max: clipping value of all messages.

    :input llr_ch: [..., n], `torch.float32` -- channel logits (positive
        means bit 1) of the rate-matched codeword.
    :output x_hat: [..., k] (or [..., n]), `torch.float32` -- logits or hard
        decisions.  After each call, ``last_iterations`` ([num_codewords],
        `torch.int32`) holds the number of iterations each codeword ran.

    Example::

        >>> import torch
        >>> from sionna.phy.fec.ldpc import LDPC5GEncoder
        >>> from phy.ldpc import EarlyStopLDPC5GDecoder
        >>> enc = LDPC5GEncoder(k=100, n=200)
        >>> dec = EarlyStopLDPC5GDecoder(enc, num_iter=50)
        >>> u = torch.randint(0, 2, (4, 100)).float()
        >>> llr = 8.0 * (2.0 * enc(u) - 1.0)
        >>> bool(((dec(llr) > 0).float() == u).all())
        True
    """

    def __init__(
        self,
        encoder: LDPC5GEncoder,
        num_iter: int = 50,
        cn_update: str = "boxplus",
        early_stop: bool = True,
        check_every: int = 1,
        hard_out: bool = False,
        return_infobits: bool = True,
        llr_max: float = 20.0,
        precision: Optional[str] = None,
        device: Optional[str] = None,
    ) -> None:
        if not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
        super().__init__(
            encoder,
            cn_update=cn_update,
            vn_update="sum",
            cn_schedule="flooding",
            hard_out=hard_out,
            return_infobits=return_infobits,
            num_iter=num_iter,
            llr_max=llr_max,
            prune_pcm=True,
            return_state=False,
            precision=precision,
            device=device,
        )
        self._es_enabled = bool(early_stop)
        self._es_check_every = int(check_every)
        self.last_iterations: Optional[torch.Tensor] = None
        self._build_composed_indices()
