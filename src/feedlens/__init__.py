"""feedlens: self-hosted recognition and categorisation of social-media images."""

__version__ = "0.1.0"
