"""Suite-wide isolation: caches go to a temporary folder, not the user's home."""

from __future__ import annotations

import os
import tempfile

# Set before any test imports zoo.analysis, so `zoo list` caches never touch ~/.cache.
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="zoo-test-cache-"))
