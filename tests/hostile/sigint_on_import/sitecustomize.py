"""Test aid: SIGINT to this process the moment a named module starts importing
(``MEESHY_TEST_SIGINT_ON_IMPORT``), as a Ctrl-C while Python is still importing would."""

import builtins
import os
import signal
from typing import Any

_target = os.environ.get("MEESHY_TEST_SIGINT_ON_IMPORT", "")
_real_import = builtins.__import__
_fired: list[str] = []


def _import(name: str, *args: Any, **kwargs: Any) -> Any:
    if _target and not _fired and (name == _target or name.startswith(_target + ".")):
        _fired.append(name)
        os.kill(os.getpid(), signal.SIGINT)
    return _real_import(name, *args, **kwargs)


builtins.__import__ = _import
