"""Where the reference data lives, without private absolute paths.

`$DLM_SHARED_DATA` if set, else `shared/data` beside the repository checkout (`<repo>/../shared/data`). Config
values may name it as `${DLM_SHARED_DATA}`; other environment variables expand too.
"""
import os

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED_DATA = os.environ.get("DLM_SHARED_DATA") or os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "data"))
os.environ.setdefault("DLM_SHARED_DATA", SHARED_DATA)
E2E_DATA = os.environ.get("E2E_DATA") or os.path.join(SHARED_DATA, "e2e")


def expand(path: str) -> str:
    """Expand `${VAR}` references (DLM_SHARED_DATA is always defined) and `~` in a configured path."""
    return os.path.expanduser(os.path.expandvars(path))
