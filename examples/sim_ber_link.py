"""A distdiff link inside Sionna's ``sim_ber`` and ``PlotBER``, unchanged.

Shows: a :class:`phy.DigitalLink` (5G LDPC + 16-QAM over Rayleigh block fading, LS channel
estimation) wrapped in the ``mc_fun(batch_size, ebno_db) -> (bits, llrs)`` function that
Sionna's Monte-Carlo tools call, then ``sim_ber`` for the numbers and ``PlotBER`` for the
figure, exactly as in Sionna's tutorials. ``phy.mc_fun(link, ...)`` packages this function.

Run: ``python examples/sim_ber_link.py [--quick]`` (writes ``ber.png`` into ``$OUT`` or ".").
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402
from sionna.phy.utils import PlotBER, sim_ber  # noqa: E402

from phy import DigitalLink, LinkConfig, snr_db_from_ebno_db  # noqa: E402

QUICK = "--quick" in sys.argv
config = LinkConfig(modulation="16qam", code="ldpc", code_rate=0.5, block_length=256 if QUICK else 1024,
                    channel="rayleigh", coherence_symbols=50, csi="ls")
link = DigitalLink(config)
generator = torch.Generator().manual_seed(0)


def mc_fun(batch_size, ebno_db):
    """Sionna's Monte-Carlo contract: one code block per row; LLRs (positive: bit 1) as soft estimates."""
    bits = torch.randint(0, 2, (batch_size, config.block_length), generator=generator).float()
    snr_db = float(snr_db_from_ebno_db(float(ebno_db), config.bits_per_symbol, config.effective_code_rate,
                                       config.pilot_overhead))
    return bits, link(bits, snr_db=snr_db, generator=generator).llrs


ebno_dbs = torch.arange(0.0, 13.0, 6.0 if QUICK else 2.0)
ber, bler = sim_ber(mc_fun, ebno_dbs, batch_size=8 if QUICK else 32, max_mc_iter=2 if QUICK else 20,
                    soft_estimates=True, num_target_block_errors=100, verbose=not QUICK)
for e, b, bl in zip(ebno_dbs.tolist(), ber.tolist(), bler.tolist()):
    print(f"Eb/N0 {e:5.1f} dB  BER {b:.3e}  BLER {bl:.3e}")

plot = PlotBER("distdiff link in Sionna's PlotBER")
plot.simulate(mc_fun, ebno_dbs, batch_size=8 if QUICK else 32, max_mc_iter=2 if QUICK else 20, soft_estimates=True,
              legend="LDPC 1/2, 16-QAM, Rayleigh, LS", add_bler=True, show_fig=False, verbose=False)
out = os.path.join(os.environ.get("OUT", "."), "ber.png")
plot(show_ber=True, show_bler=True, save_fig=True, path=out)
print(f"wrote {out}")
