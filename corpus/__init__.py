"""corpus: turn public source code into a training-ready corpus for code language models."""

import os as _os

__version__ = "0.1.0"

# gcsfs >= 2025.x asks the Storage Control gRPC API for each bucket's layout (hierarchical
# namespace); against anything but Google it waits 60 s per operation and falls back. The
# classic filesystem is what we need for gs:// dataset directories, so turn that probe off before
# fsspec imports gcsfs (it reads the flag at import). Workers inherit it from this import too.
_os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
