"""corpus: public source code in, training-ready corpus out."""

__version__ = "0.1.0"
