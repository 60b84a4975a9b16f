"""The web dashboard under ``/ui``: server-rendered pages over the same ``System``.

``build(ctx)`` returns the router ``create_app`` mounts. Modules: ``routes`` (the pages and
the request gate), ``auth`` (API key → server-side session cookie, CSRF), ``access`` (what
each page and element needs, from the API's permission table), ``views`` (what each page
shows), ``svg`` (graphs drawn from ``core.graph_layout``). Templates and the one stylesheet
and script ship inside the package (``templates/``, ``static/``): no CDN, no build step.

Like the rest of ``api``, this package only translates: it never decides RBAC itself and
never writes state except sessions and the one action, resume.
"""

from devskyy.api.ui.routes import build

__all__ = ["build"]
