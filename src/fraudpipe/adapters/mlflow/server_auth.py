"""The MLflow server's login check: MLflow's basic auth, and only the promoter moves aliases.

MLflow's permission levels cannot say "registers versions but does not move aliases": creating a
version and setting an alias both need EDIT on the registered model. So the server runs with
this function as its ``authorization_function`` (the auth config's documented hook, see
`fraudpipe.stack.mlflow_server`): it logs the user in with MLflow's own
`authenticate_request_basic_auth`, then refuses the routes that change what serves
(`PROMOTION_ROUTES`) to anyone but the promoter and the admin, and the deletion or renaming of
a registered model to anyone but the admin. Everything else is left to MLflow's permissions.

It runs inside the MLflow server; the two user names come from its environment
(`PROMOTER_VARIABLE`, `ADMIN_VARIABLE`).
"""

from __future__ import annotations

import os
import re
from typing import Final

from flask import Response, request
from mlflow.server.auth import authenticate_request_basic_auth

from fraudpipe.adapters.mlflow.principals import ADMIN_VARIABLE, PROMOTER_VARIABLE

_API: Final = r"/(?:ajax-)?api/[^/]+/mlflow/"
#: Move or drop an alias; change, re-stage or delete a version (its tags carry the gate's
#: signature and decision).
PROMOTION_ROUTES: Final = re.compile(
    _API + r"(?:registered-models/alias"
    r"|model-versions/(?:set-tag|delete-tag|update|transition-stage|delete))$"
)
#: Remove or rename a whole registered model.
ADMIN_ROUTES: Final = re.compile(_API + r"registered-models/(?:delete|rename)$")
_READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def allowed(user: str, method: str, path: str) -> bool:
    """Whether `user` may send `method` to `path` as far as this check goes."""
    if method in _READ_METHODS:
        return True
    admin = os.environ.get(ADMIN_VARIABLE, "")
    if ADMIN_ROUTES.search(path):
        return user == admin
    if PROMOTION_ROUTES.search(path):
        return user in {admin, os.environ.get(PROMOTER_VARIABLE, "")}
    return True


def authenticate() -> object:
    """MLflow's basic-auth login, then `allowed`; a 403 response when it says no."""
    result = authenticate_request_basic_auth()
    if isinstance(result, Response):
        return result
    if not allowed(str(result.username), request.method, request.path):
        return Response(
            f"{result.username} may not {request.method} {request.path}: only the promotion "
            "gate's principal moves aliases and changes versions",
            status=403,
        )
    return result
