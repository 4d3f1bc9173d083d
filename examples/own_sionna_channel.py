"""A user's own Sionna channel carrying a distdiff latent.

Shows: any object that follows phy's channel contract -- complex symbols ``[batch, n]`` and a
noise variance in; equalised symbols, their effective noise variance and the channel uses out
(:class:`phy.ChannelOutput`) -- plugs into :class:`phy.DigitalLink` through ``channel=``.
Here the channel is Sionna's own ``FlatFadingChannel`` (i.i.d. Rayleigh per symbol) with a
zero-forcing receiver; a latent is quantised by a distdiff codec, LDPC-coded, sent over it,
and decoded softly from the link's LLRs.

Run: ``python examples/own_sionna_channel.py [--quick]``.
"""

import sys

import torch
from sionna.phy import config as sionna_config
from sionna.phy.channel import FlatFadingChannel

from latent_codec import make_codec
from phy import Channel, ChannelOutput, DigitalLink, LinkConfig

SNR_DB = 12.0 if "--quick" in sys.argv else 10.0
sionna_config.seed = 0  # Sionna draws the fading from its own generator


class SionnaRayleigh(Channel):
    """Fast Rayleigh fading from Sionna, perfect CSI, zero-forcing equalisation."""

    def __init__(self):
        super().__init__()
        self.fading = FlatFadingChannel(num_tx_ant=1, num_rx_ant=1, add_awgn=True, return_channel=True)

    def forward(self, symbols, noise_var, *, generator=None):
        y, h = self.fading(symbols.reshape(-1, 1), noise_var)
        h = h.reshape(symbols.shape)
        return ChannelOutput(symbols_hat=y.reshape(symbols.shape) / h,
                             noise_var_eff=(noise_var / h.abs() ** 2).float(),
                             channel_estimate=h)

    def channel_uses(self, num_symbols: int) -> int:
        return num_symbols  # one complex channel use per symbol, no pilots


latents = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))  # a [B, C, H, W] latent
codec = make_codec("uniform", bits=8)
payload = codec.compress(latents)

link = DigitalLink(LinkConfig(modulation="16qam", code="ldpc", code_rate=0.5), channel=SionnaRayleigh())
received = link(payload.bits, snr_db=SNR_DB, generator=torch.Generator().manual_seed(1))
decoded = codec.decompress(received.llrs, payload.header, llrs=True)

mse = torch.mean((decoded.latents - latents) ** 2).item()
print(f"{payload.bits.shape[1]} bits over Sionna's FlatFadingChannel at {SNR_DB:g} dB: "
      f"BER {received.ber:.2e}, BLER {received.bler:.2e}, latent MSE {mse:.2e}")
