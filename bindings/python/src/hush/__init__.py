"""hush: end-to-end encrypted messaging, Python bindings of the Rust core.

Everything is re-exported from the uniffi-generated module ``hush.hush_ffi``, which loads the
native library ``libhush_ffi`` from this package's directory. Both files are generated and copied
here by ``scripts/bindings.sh`` (they are not committed).

Errors are typed: every failing call raises a subclass of :class:`HushError`
(``HushError.BadInput``, ``HushError.Decryption``, ``HushError.Identity`` ...), one per kind of
failure. Each has a ``code``, the kind's stable name in every hush binding (``"bad_input"``,
``"decryption"``, ``"identity"`` ...: the class name in snake_case); ``hush_error_codes()`` lists
them all.

A listener that raises does not stop the events: the exception is logged on the ``hush`` logger
(``logging.getLogger("hush")``) and the next event is delivered.
"""

import logging as _logging
import re as _re

from .hush_ffi import *  # noqa: F401,F403
from .hush_ffi import HushClient, HushError, HushListener, hush_version  # noqa: F401

__version__ = hush_version()


def _error_code(self) -> str:
    """The stable code of this error's kind, e.g. ``"bad_input"`` for ``HushError.BadInput``."""
    return _re.sub(r"(?<!^)(?=[A-Z])", "_", type(self).__name__).lower()


HushError.code = property(_error_code)


class _LoggedListener(HushListener):
    """Calls the application's listener; what it raises is logged, and delivery goes on."""

    def __init__(self, listener):
        self._listener = listener

    def on_event(self, event):
        try:
            self._listener.on_event(event)
        except Exception:  # noqa: BLE001 - any bug in the application's listener
            _logging.getLogger("hush").exception("the event listener raised on %s", type(event).__name__)


_set_listener = HushClient.set_listener


def _set_logged_listener(self, listener):
    """Registers ``listener`` for every event (see the module docs for what an exception does)."""
    _set_listener(self, _LoggedListener(listener))


HushClient.set_listener = _set_logged_listener
