"""api: the HTTP entry point (FastAPI). It only translates HTTP to runtime calls.

``create_app(system, settings=None)`` builds one app over a ``System``; nothing is
global. It must not import ``devskyy.cli`` (cli sits above api).
"""

from devskyy.api.app import create_app
from devskyy.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
