"""hush: end-to-end encrypted messaging, Python bindings of the Rust core.

Everything is re-exported from the uniffi-generated module ``hush.hush_ffi``, which loads the
native library ``libhush_ffi`` from this package's directory. Both files are generated and copied
here by ``scripts/bindings.sh`` (they are not committed).

Errors are typed: every failing call raises a subclass of :class:`HushError`
(``HushError.BadInput``, ``HushError.Decryption``, ``HushError.Identity`` ...).
"""

from .hush_ffi import *  # noqa: F401,F403
from .hush_ffi import HushError, hush_version  # noqa: F401

__version__ = hush_version()
