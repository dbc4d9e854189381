"""hush: end-to-end encrypted messaging, Python bindings of the Rust core.

Everything is re-exported from the uniffi-generated module ``hush.hush_ffi``, which loads the
native library ``libhush_ffi`` from this package's directory. Both files are generated and copied
here by ``scripts/bindings.sh`` (they are not committed).

Errors are typed: every failing call raises a subclass of :class:`HushError`
(``HushError.BadInput``, ``HushError.Decryption``, ``HushError.Identity`` ...), one per kind of
failure. Each has a ``code``, the kind's stable name in every hush binding (``"bad_input"``,
``"decryption"``, ``"identity"`` ...: the class name in snake_case); ``hush_error_codes()`` lists
them all.
"""

import re as _re

from .hush_ffi import *  # noqa: F401,F403
from .hush_ffi import HushError, hush_version  # noqa: F401

__version__ = hush_version()


def _error_code(self) -> str:
    """The stable code of this error's kind, e.g. ``"bad_input"`` for ``HushError.BadInput``."""
    return _re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


HushError.code = property(_error_code)
