"""A user's own diffusers pipeline and scheduler through the collaborative chain.

Shows: a pipeline loaded with plain ``StableDiffusionPipeline.from_pretrained`` (the shipped
model folder; any Stable-Diffusion-family folder works), its scheduler swapped for DDIM the
diffusers way (``pipe.scheduler = ...``), and a transport object built by the user (a distdiff
codec over a :class:`phy.DigitalLink`). The chain runs the sender's shared steps with the
pipeline's own scheduler, sends the state over the link, and the receiver finishes with its
prompt; randomness comes from the run's seed (the link's noise from generators derived from it).

Run: ``python examples/own_diffusers_pipeline.py [--quick]`` (writes ``receiver.png`` into ``$OUT`` or ".").
"""

import os
import sys

from diffusers import DDIMScheduler, StableDiffusionPipeline
from PIL import Image

from latent_codec import make_codec
from phy import DigitalLink, LinkConfig
from pipeline import DEFAULT_MODEL_DIR, ChainConfig, CollaborativeChain
from pipeline.transport import DigitalTransport

QUICK = "--quick" in sys.argv
pipe = StableDiffusionPipeline.from_pretrained(DEFAULT_MODEL_DIR)  # plain diffusers, default arguments
pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # the user's choice of scheduler

transport = DigitalTransport(make_codec("uniform", bits=6),
                             DigitalLink(LinkConfig(modulation="qpsk", code="ldpc", code_rate=0.5, channel="awgn")),
                             snr_db=4.0)
config = ChainConfig(num_inference_steps=4 if QUICK else 11, num_shared_steps=2 if QUICK else 5,
                     scheduler=None,  # None: the pipeline's own scheduler (DDIM here)
                     snr_db=4.0,  # labels the rows; the transport object above does the sending
                     compare_alone=not QUICK, classify=False)
chain = CollaborativeChain(pipe, config, transport=transport)
record = chain.run("a red apple on a wooden table", ["a yellow lemon on a wooden table"], seed=0)[0]

row = record.to_row()
out = os.path.join(os.environ.get("OUT", "."), "receiver.png")
Image.fromarray(record.image).save(out)
print(f"{type(pipe.scheduler).__name__}: PSNR vs the error-free reference {row['psnr_db']:.2f} dB, "
      f"BER {row['ber']:.2e}, {row['payload_bits']} bits -> {out}")
