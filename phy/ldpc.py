"""5G LDPC decoding with early stopping, on top of Sionna's decoder.

Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` always runs a fixed
number of belief-propagation (BP) iterations on every codeword of a batch.
:class:`EarlyStopLDPC5GDecoder` is that decoder (Sionna's rate recovery,
pruning and output format) with a different BP stage:

1. **Early stopping.**  After every ``check_every`` iterations the hard
   decisions of each codeword are checked against the parity-check matrix.
   A codeword whose checks all hold is *retired*: its output is frozen and it
   leaves the batch, and the remaining codewords continue exactly from their
   decoder state (the variable-to-check messages).  Decoding ends when all
   codewords are retired or ``num_iter`` iterations have run.
2. **Two kernels for the iterations.**  ``kernel="exact"`` runs Sionna's own
   node-update functions on Sionna's padded layouts, with the six
   gather/scatter operations Sionna uses per iteration composed into two; its
   messages, and so every output value, are bit-identical to Sionna's decoder
   (``early_stop=False`` reproduces :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder`
   exactly; see the tests).  ``kernel="fast"`` (the default for
   ``cn_update="boxplus"``) computes the same exact boxplus rule with the same
   clipping on a batch-last edge layout without padding (check nodes grouped
   by degree); the variable-node update is one scatter-add and one gather.
   It equals Sionna up to float rounding.

Only the flooding schedule without callbacks is supported.

LLR convention (Sionna's): inputs and soft outputs are logits
``log(p(b=1)/p(b=0))``, i.e. positive means bit 1.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder, LDPCBPDecoder

from ._sionna_compat import LdpcBpInternals

__all__ = ["EarlyStopLDPC5GDecoder"]

# constants of the exact boxplus rule, as in Sionna's cn_update_tanh
_TINY = 1e-12
_ATANH_CLIP = 1.0 - 1e-7



class _EarlyStopBP(LDPCBPDecoder):
    """BP stage with composed gathers and early stopping (a mixin).

    It sits between :class:`LDPC5GDecoder` and :class:`LDPCBPDecoder` in the
    method resolution order of :class:`EarlyStopLDPC5GDecoder`, so that the
    5G wrapper's ``super().call(llr_5g, ...)`` lands here.
    """

    def _build_composed_indices(self) -> None:
        """Compose Sionna's gather/scatter index buffers into two gathers."""
        dev = self._sn.v2c_perm.device
        v2c_perm = self._sn.v2c_perm.long().cpu().numpy()
        v2c_perm_inv = self._sn.v2c_perm_inv.long().cpu().numpy()
        cn_gather = self._sn.cn_gather_idx.long().cpu().numpy()  # [num_cns, dc]
        vn_gather = self._sn.vn_gather_idx.long().cpu().numpy()  # [num_vns, dv]
        num_edges = self.num_edges

        # CN-ordered edge -> flat position in the padded CN layout.
        cn_pos = np.empty(num_edges, dtype=np.int64)
        cn_pos[self._sn.cn_valid_edge_idx.long().cpu().numpy()] = (
            self._sn.cn_valid_positions.long().cpu().numpy()
        )
        # VN-ordered edge -> flat position in the padded VN layout.
        vn_pos = np.empty(num_edges, dtype=np.int64)
        vn_pos[self._sn.vn_valid_edge_idx.long().cpu().numpy()] = (
            self._sn.vn_valid_positions.long().cpu().numpy()
        )

        # padded CN position -> VN-ordered edge (as in Sionna's _gather_to_cn)
        a_idx = v2c_perm[cn_gather.reshape(-1)]
        # padded VN position -> padded CN position (scatter_from_cn+gather_to_vn)
        b_idx = cn_pos[v2c_perm_inv[vn_gather.reshape(-1)]]
        # padded CN position -> padded VN position (scatter_from_vn+gather_to_cn)
        c_idx = vn_pos[a_idx]
        # padded CN position -> variable node index (first iteration, syndrome)
        vn_of_cn = self._sn.vn_idx_t.long().cpu().numpy()[a_idx]

        self.register_buffer("_es_vn_of_cn", torch.as_tensor(vn_of_cn, device=dev), persistent=False)
        self.register_buffer("_es_cn2vn", torch.as_tensor(b_idx, device=dev), persistent=False)
        self.register_buffer("_es_vn2cn", torch.as_tensor(c_idx, device=dev), persistent=False)

    def _build_fast_indices(self) -> None:
        """Edge layout of the batch-last boxplus kernel (see :meth:`_fast_step`).

        Edges are ordered by check node, check nodes grouped by degree, so that
        each group is a dense ``[n_cns, degree, batch]`` block: no padding.
        """
        dev = self._sn.v2c_perm.device
        cn_idx, vn_idx = np.asarray(self._sn.cn_idx), np.asarray(self._sn.vn_idx)
        degree = np.bincount(cn_idx, minlength=self.num_cns)
        # sort edges by (degree of their check node, check node)
        order = np.lexsort((cn_idx, degree[cn_idx]))
        self.register_buffer("_fast_vn", torch.as_tensor(vn_idx[order], dtype=torch.int64, device=dev),
                             persistent=False)
        self.register_buffer("_fast_cn", torch.as_tensor(cn_idx[order], dtype=torch.int64, device=dev),
                             persistent=False)
        groups, offset = [], 0
        for d in sorted(set(degree.tolist())):
            if d == 0:
                continue
            count = int((degree == d).sum())
            groups.append((offset, count, int(d)))
            offset += count * int(d)
        self._fast_groups = groups  # (first edge, check nodes, degree)

    # -- exact kernel: Sionna's node updates, batch first ------------------
    def _exact_init(self, llr: torch.Tensor) -> dict:
        return {"llr": llr, "msg": None, "x_tot": llr}

    def _exact_step(self, st: dict) -> None:
        llr = st["llr"]
        bs = llr.shape[0]
        ncn, dc = self.num_cns, self._sn.max_cn_degree
        nvn, dv = self.num_vns, self._sn.max_vn_degree
        if st["msg"] is None:
            msg_cn = llr.index_select(1, self._es_vn_of_cn)
        else:
            msg_cn = st["msg"].index_select(1, self._es_vn2cn)
        msg_cn = msg_cn.view(bs, ncn, dc) * self._sn.cn_mask
        msg_cn_out = self._sn.cn_update(msg_cn, self._sn.cn_mask, self.llr_max)
        msg_vn = msg_cn_out.reshape(bs, ncn * dc).index_select(1, self._es_cn2vn)
        msg_vn = msg_vn.view(bs, nvn, dv) * self._sn.vn_mask
        msg_vn_out, st["x_tot"] = self._sn.vn_update(msg_vn, self._sn.vn_mask, llr, self.llr_max)
        st["msg"] = msg_vn_out.reshape(bs, nvn * dv)

    def _exact_x_hat(self, st: dict) -> torch.Tensor:
        return st["x_tot"]

    def _exact_keep(self, st: dict, keep: torch.Tensor) -> None:
        for key in ("llr", "msg", "x_tot"):
            st[key] = st[key][keep]

    # -- fast kernel: exact boxplus, batch last, no padding -------------------
    def _fast_init(self, llr: torch.Tensor) -> dict:
        llr_t = llr.t().contiguous()  # [nvn, bs]
        return {"llr": llr_t, "v2c": llr_t.index_select(0, self._fast_vn), "x_tot": llr_t}

    def _fast_step(self, st: dict) -> None:
        r"""One flooding iteration with the exact boxplus rule.

        Messages live on the edges, ``[num_edges, batch]``, ordered by check
        node with the check nodes grouped by degree.  Check nodes:
        :math:`c_i = 2\,\mathrm{atanh}(\prod_{j\ne i}\tanh(v_j/2))` with
        Sionna's clipping (the product per degree group, everything else on
        all edges at once); variable nodes: one scatter-add of the check
        messages onto the channel LLRs and one gather back.
        """
        llr_max = self.llr_max
        t = torch.tanh(0.5 * st["v2c"])
        t = torch.where(t == 0, _TINY, t)
        parts = []
        for first, count, deg in self._fast_groups:
            tg = t[first : first + count * deg].view(count, deg, -1)
            parts.append((tg.prod(dim=1, keepdim=True) / tg).view(count * deg, -1))
        e = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        c2v = 2.0 * torch.atanh(e.clamp(-_ATANH_CLIP, _ATANH_CLIP))
        if llr_max is not None:
            c2v = c2v.clamp(-llr_max, llr_max)
        x_tot = st["llr"].index_add(0, self._fast_vn, c2v)
        v2c = x_tot.index_select(0, self._fast_vn) - c2v
        if llr_max is not None:
            v2c = v2c.clamp(-llr_max, llr_max)
        st["v2c"], st["x_tot"] = v2c, x_tot

    def _fast_x_hat(self, st: dict) -> torch.Tensor:
        x = st["x_tot"]
        if self.llr_max is not None:
            x = x.clamp(-self.llr_max, self.llr_max)
        return x.t()

    def _fast_keep(self, st: dict, keep: torch.Tensor) -> None:
        idx = keep.nonzero().squeeze(1)
        for key in ("llr", "v2c", "x_tot"):
            st[key] = st[key].index_select(1, idx)

    def _fast_syndrome_ok(self, st: dict) -> torch.Tensor:
        x = st["x_tot"]
        hard = (x <= 0).to(x.dtype).index_select(0, self._fast_vn)
        parity = torch.zeros(self.num_cns, x.shape[1], dtype=x.dtype, device=x.device)
        parity = parity.index_add(0, self._fast_cn, hard)
        return (torch.remainder(parity, 2.0) == 0).all(dim=0)

    def _exact_syndrome_ok(self, st: dict) -> torch.Tensor:
        return self._syndrome_ok(st["x_tot"])

    def _syndrome_ok(self, x_tot: torch.Tensor) -> torch.Tensor:
        """True for the codewords whose hard decisions satisfy all checks.

        :param x_tot: [batch, num_vns] LLRs (positive means bit 0).
        :output ok: [batch] bool.
        """
        hard = (x_tot <= 0).to(x_tot.dtype)
        bits = hard.index_select(1, self._es_vn_of_cn).view(
            hard.shape[0], self.num_cns, self._sn.max_cn_degree
        )
        parity = (bits * self._sn.cn_mask).sum(dim=2)
        return (torch.remainder(parity, 2.0) == 0).all(dim=1)

    def call(  # pylint: disable=arguments-differ
        self,
        llr_ch: torch.Tensor,
        /,
        *,
        num_iter: Optional[int] = None,
        msg_v2c: Optional[torch.Tensor] = None,
    ):
        if msg_v2c is not None:
            raise ValueError("EarlyStopLDPC5GDecoder does not accept an external decoder state")
        if num_iter is None:
            num_iter = self.num_iter
        if self.llr_max is not None:
            llr_ch = llr_ch.clamp(-self.llr_max, self.llr_max)
        llr = llr_ch.reshape(-1, self.num_vns) * -1.0  # true LLRs
        batch = llr.shape[0]
        fast = self._es_kernel == "fast"
        init, step, x_hat, keep_rows, syndrome_ok = (
            (self._fast_init, self._fast_step, self._fast_x_hat, self._fast_keep, self._fast_syndrome_ok)
            if fast
            else (self._exact_init, self._exact_step, self._exact_x_hat, self._exact_keep, self._exact_syndrome_ok)
        )

        out = llr  # x_hat of codewords that run zero iterations
        iterations = torch.zeros(batch, dtype=torch.int32, device=llr.device)
        active = torch.arange(batch, device=llr.device)
        st = init(llr)
        retired_any = False
        it = 0
        while it < num_iter and active.shape[0] > 0:
            step(st)
            it += 1
            if self._es_enabled and (it % self._es_check_every == 0) and it < num_iter:
                ok = syndrome_ok(st)
                if bool(ok.any()):
                    if not retired_any:
                        out = llr.clone()
                        retired_any = True
                    out = _index_put_rows(out, active[ok], x_hat(st)[ok])
                    iterations = iterations.index_fill(0, active[ok], it)
                    keep = ~ok
                    active = active[keep]
                    keep_rows(st, keep)

        if active.shape[0] > 0:
            iterations = iterations.index_fill(0, active, it)
            out = _index_put_rows(out, active, x_hat(st)) if retired_any else x_hat(st)
        if self._sn.hard_out:
            result = (out <= 0).to(self.dtype).reshape(llr_ch.shape)
        else:
            result = (out * -1.0).reshape(llr_ch.shape)
        # the iteration counts travel as the decoder "state" output of
        # Sionna's LDPC5GDecoder (built with return_state=True)
        return (result, iterations) if self.return_state else result


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
    exactly from their decoder state.  With ``kernel="exact"`` and
    ``early_stop=False`` its output is bit-identical to Sionna's decoder with
    the same ``cn_update`` and ``num_iter``.

    :param encoder: the :class:`~sionna.phy.fec.ldpc.LDPC5GEncoder` of the code.
    :param num_iter: maximum number of BP iterations per codeword.
    :param cn_update: check-node rule: ``"boxplus"`` (exact, tanh-based,
        the default here), ``"boxplus-phi"`` (Sionna's default),
        ``"minsum"`` or ``"offset-minsum"``.
    :param early_stop: retire codewords whose parity checks hold.
    :param check_every: run the parity check every this many iterations.
    :param kernel: ``"exact"`` runs Sionna's own node-update functions on
        Sionna's padded layouts (bit-identical to Sionna), ``"fast"`` the
        project's batch-last kernel for ``cn_update="boxplus"`` (the same exact
        boxplus rule and clipping, fewer operations, no padding; equal to
        Sionna up to float rounding); ``"auto"`` picks ``"fast"`` for
        boxplus and ``"exact"`` otherwise.
    :param hard_out: return hard decisions (float 0/1) instead of logits.
    :param return_infobits: return only the ``k`` information bits.
    :param llr_max: clipping value of all messages.

    :input llr_ch: [..., n], `torch.float32` -- channel logits (positive
        means bit 1) of the rate-matched codeword.
    :output x_hat: [..., k] (or [..., n]), `torch.float32` -- logits or hard
        decisions.
    :output iterations: [...], `torch.int32` -- only with the keyword
        ``return_iterations=True`` (then the output is ``(x_hat,
        iterations)``): the BP iterations each codeword ran.

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
        >>> x_hat, iterations = dec(llr, return_iterations=True)
        >>> iterations.tolist()  # clean codewords: valid after one iteration
        [1, 1, 1, 1]
    """

    def __init__(
        self,
        encoder: LDPC5GEncoder,
        num_iter: int = 50,
        cn_update: str = "boxplus",
        early_stop: bool = True,
        check_every: int = 1,
        kernel: str = "auto",
        hard_out: bool = False,
        return_infobits: bool = True,
        llr_max: float = 20.0,
        precision: Optional[str] = None,
        device: Optional[str] = None,
    ) -> None:
        if not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
        if kernel == "auto":
            kernel = "fast" if cn_update == "boxplus" else "exact"
        if kernel not in ("fast", "exact"):
            raise ValueError(f"kernel must be 'auto', 'fast' or 'exact', got {kernel!r}")
        if kernel == "fast" and cn_update != "boxplus":
            raise ValueError(f"the fast kernel implements cn_update='boxplus' only, got {cn_update!r}")
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
            return_state=True,
            precision=precision,
            device=device,
        )
        self._sn = LdpcBpInternals(self)  # Sionna's private decoder state, through phy._sionna_compat
        self._es_enabled = bool(early_stop)
        self._es_kernel = kernel
        self._es_check_every = int(check_every)
        self._build_composed_indices()
        self._build_fast_indices()

    def call(  # pylint: disable=arguments-differ
        self,
        llr_ch: torch.Tensor,
        /,
        *,
        num_iter: Optional[int] = None,
        return_iterations: bool = False,
    ):
        x_hat, iterations = super().call(llr_ch, num_iter=num_iter)
        if return_iterations:
            return x_hat, iterations.reshape(llr_ch.shape[:-1])
        return x_hat
