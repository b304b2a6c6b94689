"""pnitrial: reproducible re-analysis of mind-body intervention trials."""

__version__ = "0.1.0"
