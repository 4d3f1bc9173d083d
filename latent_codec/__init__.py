"""distdiff: latent_codec package."""
