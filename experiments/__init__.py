"""distdiff: experiments package."""
