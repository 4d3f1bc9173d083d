"""distdiff: phy package."""
