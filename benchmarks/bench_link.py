"""Throughput of the link chains: this project's wrapping vs Sionna used directly.

For each chain (uncoded, LDPC, Polar, OFDM + TDL) the script times, in one
process and interleaved round by round:

* ``sionna``  -- the same chain written directly against Sionna's blocks with
  Sionna's default decoder settings (LDPC: BP, 20 flooding iterations,
  ``boxplus-phi``; Polar: SCL, list 8);
* ``equal``   -- :class:`phy.DigitalLink` with the same settings
  (``decoder="sionna"``, no chunking): the cost of the wrapping;
* ``default`` -- :class:`phy.DigitalLink` as configured by default (LDPC:
  early stopping, ``boxplus``, up to 50 iterations, decoding in cache-sized
  chunks).

It prints information bits per second (median over rounds), the ratios, and
the BLER each variant measured, so that speed is compared at equal or better
BLER.  One torch thread; glibc's allocator is tuned (:func:`phy.tune_malloc`)
for every variant alike.

Run::

    python benchmarks/bench_link.py            # ~2-4 minutes
    python benchmarks/bench_link.py --rounds 3 --quick
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

torch.set_num_threads(1)

import phy  # noqa: E402
from phy import DigitalLink, LinkConfig  # noqa: E402

from sionna.phy import config as sionna_config  # noqa: E402
from sionna.phy.channel import AWGN, OFDMChannel  # noqa: E402
from sionna.phy.channel.tr38901 import TDL  # noqa: E402
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder  # noqa: E402
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder  # noqa: E402
from sionna.phy.fec.polar import Polar5GDecoder, Polar5GEncoder  # noqa: E402
from sionna.phy.mapping import Demapper, Mapper  # noqa: E402
from sionna.phy.mimo import StreamManagement  # noqa: E402
from sionna.phy.ofdm import LMMSEEqualizer, LSChannelEstimator, ResourceGrid, ResourceGridMapper  # noqa: E402


class DirectChain:
    """A chain written directly with Sionna blocks (Sionna's defaults)."""

    def __init__(self, cfg: LinkConfig) -> None:
        self.cfg = cfg
        m = cfg.bits_per_symbol
        self.k = cfg.block_length
        n = cfg.codeword_length
        self.mapper = Mapper("qam", m)
        self.demapper = Demapper("app", "qam", m)
        self.crc_enc = self.crc_dec = None
        if cfg.code == "ldpc":
            self.crc_enc = CRCEncoder("CRC24B")
            self.crc_dec = CRCDecoder(self.crc_enc)
            self.encoder = LDPC5GEncoder(self.k + 24, n, num_bits_per_symbol=m)
            self.decoder = LDPC5GDecoder(self.encoder)  # Sionna defaults: 20 it., boxplus-phi, hard out
        elif cfg.code == "polar":
            self.encoder = Polar5GEncoder(self.k, n)
            self.decoder = Polar5GDecoder(self.encoder, dec_type="SCL", list_size=8)
        else:
            self.encoder = self.decoder = None
        self.ofdm = cfg.is_ofdm
        if self.ofdm:
            self.rg = ResourceGrid(num_ofdm_symbols=14, fft_size=cfg.fft_size,
                                   subcarrier_spacing=cfg.subcarrier_spacing_hz,
                                   cyclic_prefix_length=cfg.cyclic_prefix_length,
                                   pilot_pattern="kronecker", pilot_ofdm_symbol_indices=[2, 11])
            self.rg_mapper = ResourceGridMapper(self.rg)
            tdl = TDL(cfg.tdl_model, cfg.delay_spread_s, cfg.carrier_frequency_hz,
                      min_speed=cfg.speed_mps, max_speed=cfg.speed_mps)
            self.channel = OFDMChannel(tdl, self.rg, return_channel=False)
            self.estimator = LSChannelEstimator(self.rg, interpolation_type="lin")
            self.equalizer = LMMSEEqualizer(self.rg, StreamManagement([[1]], 1))
        else:
            self.awgn = AWGN()

    def __call__(self, bits: torch.Tensor, snr_db: float) -> torch.Tensor:
        no = 10 ** (-snr_db / 10)
        batch = bits.shape[0]
        u = bits if self.crc_enc is None else self.crc_enc(bits)
        c = u if self.encoder is None else self.encoder(u)
        x = self.mapper(c)
        if self.ofdm:
            d = self.rg.num_data_symbols
            slots = math.ceil(x.shape[1] / d)
            xs = torch.nn.functional.pad(x, (0, slots * d - x.shape[1])).reshape(batch * slots, 1, 1, d)
            y = self.channel(self.rg_mapper(xs), no)
            h_hat, err_var = self.estimator(y, no)
            x_hat, no_eff = self.equalizer(y, h_hat, err_var, no)
            x_hat = x_hat.reshape(batch, -1)[:, : x.shape[1]]
            no_eff = no_eff.reshape(batch, -1)[:, : x.shape[1]]
            llr = self.demapper(x_hat, no_eff)
        else:
            llr = self.demapper(self.awgn(x, no), no)
        if self.decoder is None:
            return (llr >= 0).float()
        u_hat = self.decoder(llr)
        if self.crc_dec is not None:
            u_hat, _ = self.crc_dec(u_hat)
        return u_hat


def bench(name: str, cfg: LinkConfig, snr_db: float, batch: int, rounds: int) -> dict:
    """Time the three variants of one chain, interleaved; return a summary."""
    k = cfg.block_length
    direct = DirectChain(cfg)
    equal_cfg = cfg.replace(decoder="sionna", max_codewords_per_batch=batch) if cfg.code == "ldpc" else \
        cfg.replace(max_codewords_per_batch=batch)
    variants = {"sionna": None, "equal": DigitalLink(equal_cfg), "default": DigitalLink(cfg)}
    times = {v: [] for v in variants}
    errors = {v: 0 for v in variants}
    blocks = {v: 0 for v in variants}
    gen = torch.Generator().manual_seed(0)
    sionna_config.seed = 1
    with torch.no_grad():
        for r in range(rounds + 1):  # round 0 warms up
            bits = torch.randint(0, 2, (batch, k), generator=gen).float()
            for v, link in variants.items():
                t0 = time.perf_counter()
                if link is None:
                    bits_hat = direct(bits, snr_db)
                    block_err = int((bits_hat != bits).any(dim=1).sum())
                else:
                    res = link(bits, snr_db, gen)
                    block_err = res.block_errors
                dt = time.perf_counter() - t0
                if r > 0:
                    times[v].append(dt)
                    errors[v] += block_err
                    blocks[v] += batch
    med = {v: statistics.median(t) for v, t in times.items()}
    return dict(
        name=name, snr_db=snr_db, batch=batch, k=k,
        mbps={v: batch * k / med[v] / 1e6 for v in variants},
        bler={v: errors[v] / blocks[v] for v in variants},
        overhead=med["equal"] / med["sionna"] - 1.0,
        speedup=med["sionna"] / med["default"],
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per variant (after one warm-up round)")
    p.add_argument("--quick", action="store_true", help="smaller batches")
    args = p.parse_args(argv)
    print(f"malloc tuned: {phy.tune_malloc()}  torch threads: {torch.get_num_threads()}  torch {torch.__version__}")
    q = args.quick
    chains = [
        ("uncoded 16qam awgn", LinkConfig(code="none", modulation="16qam", block_length=4096), 10.0, 256),
        ("ldpc r1/2 qpsk k1024 awgn", LinkConfig(code="ldpc", modulation="qpsk", code_rate=0.5, block_length=1024),
         1.4, 32 if q else 128),
        ("ldpc r1/2 16qam k4096 awgn", LinkConfig(code="ldpc", modulation="16qam", code_rate=0.5, block_length=4096),
         6.6, 8 if q else 32),
        ("polar r1/2 qpsk k256 awgn", LinkConfig(code="polar", modulation="qpsk", code_rate=0.5, block_length=256),
         2.0, 32 if q else 64),
        ("ofdm tdl-c 30m/s ls ldpc r1/2 16qam k1024",
         LinkConfig(channel="tdl-c", speed_mps=30.0, csi="ls", modulation="16qam", code="ldpc", code_rate=0.5,
                    block_length=1024), 15.0, 32 if q else 64),
    ]
    rows = []
    for name, cfg, snr, batch in chains:
        r = bench(name, cfg, snr, batch, args.rounds)
        rows.append(r)
        print(f"{name:42s} snr {snr:5.1f} dB | Mbit/s sionna {r['mbps']['sionna']:.3f}  equal {r['mbps']['equal']:.3f}"
              f"  default {r['mbps']['default']:.3f} | wrapping overhead {100 * r['overhead']:+.1f}%"
              f"  default speedup x{r['speedup']:.2f} | BLER sionna {r['bler']['sionna']:.3f}"
              f" equal {r['bler']['equal']:.3f} default {r['bler']['default']:.3f}", flush=True)
    latent_bits = 131072
    ldpc = next(r for r in rows if r["name"].startswith("ldpc r1/2 qpsk"))
    print(f"one Stable Diffusion latent (4x64x64 at 8 bit = {latent_bits} bits) through LDPC r1/2 QPSK at "
          f"{ldpc['snr_db']} dB: {latent_bits / ldpc['mbps']['default'] / 1e6:.2f} s default, "
          f"{latent_bits / ldpc['mbps']['sionna'] / 1e6:.2f} s Sionna default")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
