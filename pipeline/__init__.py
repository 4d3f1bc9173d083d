"""distdiff: pipeline package."""
