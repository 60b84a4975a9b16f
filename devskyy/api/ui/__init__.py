"""The web dashboard under ``/ui``: server-rendered pages over the same ``System``.

``build(ctx)`` returns the router ``create_app`` mounts. Modules: ``routes`` (the router,
signing in and out), ``page_routes`` (the pages), ``gate`` (the request gate as FastAPI
dependencies), ``pages`` (templates and headers), ``auth`` (API key → server-side session
cookie, CSRF), ``access`` (what each page and element needs, from the API's permission
table), ``views`` and ``run_views`` (what each page shows), ``svg`` (graphs drawn from
``core.graph_layout``). Templates and the one stylesheet
and script ship inside the package (``templates/``, ``static/``): no CDN, no build step.

Like the rest of ``api``, this package only translates: it never decides RBAC itself and
never writes state except sessions and the one action, resume.
"""

from devskyy.api.ui.routes import build

__all__ = ["build"]
