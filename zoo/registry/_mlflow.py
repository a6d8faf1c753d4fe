"""MLflow behind ``zoo.registry``: a quiet client for a tracking URI, checked before use."""

from __future__ import annotations

import logging
import os
import socket
import warnings
from urllib.parse import urlparse

from zoo.inference.errors import short
from zoo.registry.defaults import DEFAULT_ARTIFACTS_DIR
from zoo.registry.errors import RegistryError

#: Seconds to wait for a tracking server's port before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
#: MLflow loggers that report routine work (database migrations, artifact copies) at INFO.
_CHATTY_LOGGERS = ("mlflow", "alembic")

_quieted = False


def quiet() -> None:
    """Keep MLflow's routine messages (migrations, "registered model", deprecation chatter) out
    of a user's console: WARNING and above still show. Done once per process; the environment
    variables it sets (MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR)
    keep a value the user set."""
    global _quieted
    if _quieted:
        return
    import mlflow  # noqa: F401 - importing it configures its loggers, so set their levels after

    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow's own banners ("Successfully registered model", "Created version") are printed via
    # logging too; its UserWarnings about missing signatures or pip requirements do not apply to
    # Zoo's flavor, which records its own signature.
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    # A tracking server makes every finished run print its URL on stdout; downloads draw a bar.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quieted = True


def sqlite_file(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs)."""
    if not uri.startswith("sqlite:///"):
        return None
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:////") else os.path.abspath(uri[len("sqlite:///"):])


def artifact_location(uri: str) -> str | None:
    """Where a sqlite registry keeps its artifacts: ``mlartifacts`` beside the database file
    (MLflow would use ./mlruns of the current directory). None for a server, which decides."""
    db = sqlite_file(uri)
    return None if db is None else os.path.join(os.path.dirname(db), DEFAULT_ARTIFACTS_DIR)


def connect(uri: str):
    """An ``MlflowClient`` for tracking and registry at ``uri``, checked to answer.

    Raises:
        RegistryError: the URI is malformed, its server does not answer, or its database cannot
            be opened; the message names the URI and the fix.
    """
    quiet()
    from mlflow import MlflowClient

    if not isinstance(uri, str) or "://" not in uri and not uri.startswith("sqlite:"):
        raise RegistryError(f"Expected an MLflow tracking URI such as sqlite:///path/mlflow.db or "
                            f"http://host:5000. Received: tracking_uri={uri!r}.")
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        _check_port(uri, parsed)
    db = sqlite_file(uri)
    if db is not None:
        try:
            os.makedirs(os.path.dirname(db), exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"Cannot create the folder of the registry database {db!r} ({exc.strerror}). "
                                f"Set ZOO_HOME or tracking_uri= to a writable place.") from exc
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_registered_models(max_results=1)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many classes for a bad store
        raise RegistryError(f"The model registry at {uri!r} cannot be used: {short(exc)}. Check the tracking URI "
                            f"(sqlite:///file.db, http://host:port of a running `mlflow server`) and that it is "
                            f"reachable.") from exc
    return client


def _check_port(uri: str, parsed) -> None:
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RegistryError(f"The model registry at {uri!r} is unreachable: nothing answers on "
                            f"{parsed.hostname}:{port} ({exc.strerror or exc}). Start the tracking server "
                            f"(`mlflow server --backend-store-uri ...`) or fix tracking_uri / "
                            f"MLFLOW_TRACKING_URI.") from exc

