"""Defaults and names of ``zoo.registry``: where the default store lives, the tags a version
carries, the Redis channel of alias moves."""

from __future__ import annotations

import os
import re

#: Environment variable naming Zoo's home folder (the default registry lives there).
ZOO_HOME_ENV = "ZOO_HOME"
#: Zoo's home folder when ``ZOO_HOME`` is not set.
DEFAULT_ZOO_HOME = os.path.join("~", ".zoo")
#: The sqlite file and the artifact folder of the default registry, inside ZOO_HOME.
DEFAULT_DB_FILE = "mlflow.db"
DEFAULT_ARTIFACTS_DIR = "mlartifacts"
#: The MLflow experiment that holds one run per published version.
EXPERIMENT_NAME = "zoo-registry"
#: The alias the evaluation gate moves.
CHAMPION = "champion"
#: Entries kept per alias in its rollback history and in its log.
MAX_ALIAS_HISTORY = 100

# Tags of a model version.
TAG_STATUS = "zoo.status"
TAG_OFFSETS = "zoo.offsets"
TAG_PARENT = "zoo.parent"
TAG_SIGNATURE = "zoo.signature"
TAG_REJECTED_REASON = "zoo.rejected_reason"
#: Prefix of the training metrics, one tag each: ``zoo.metric.loss``.
TAG_METRIC_PREFIX = "zoo.metric."
#: The metric the gate judged the version on, its name and direction.
TAG_GATE_METRIC = "zoo.gate.metric"
TAG_GATE_METRIC_NAME = "zoo.gate.metric_name"
#: Prefix of the registered model's alias history tags (the versions rollback steps back
#: through, newest last): ``zoo.alias_history.champion``.
TAG_ALIAS_HISTORY_PREFIX = "zoo.alias_history."
#: Prefix of the registered model's alias log tags (every move, rollbacks included): ``zoo.alias_log.champion``.
TAG_ALIAS_LOG_PREFIX = "zoo.alias_log."

# Values of TAG_STATUS.
STATUS_CANDIDATE = "candidate"
STATUS_CHAMPION = "champion"
STATUS_REJECTED = "rejected"
#: A former champion replaced by a newer accepted version.
STATUS_RETIRED = "retired"
#: A champion the alias was rolled back from.
STATUS_ROLLED_BACK = "rolled_back"


def zoo_home() -> str:
    """Zoo's home folder: env ``ZOO_HOME``, else ``~/.zoo`` (user-expanded, not created)."""
    return os.path.abspath(os.path.expanduser(os.environ.get(ZOO_HOME_ENV) or DEFAULT_ZOO_HOME))


def default_tracking_uri() -> str:
    """env ``MLFLOW_TRACKING_URI`` if set, else the sqlite file ``<ZOO_HOME>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.join(zoo_home(), DEFAULT_DB_FILE)}"


def alias_channel(name: str) -> str:
    """The Redis pub/sub channel on which alias moves of model ``name`` are published."""
    return f"zoo:model-alias:{name}"


#: A registry model URI: ``models:/name@alias`` or ``models:/name/3``.
MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))$")


def parse_model_uri(uri: object) -> tuple[str, str | None, int | None] | None:
    """``(name, alias, version)`` of ``models:/name@alias`` (version None) or ``models:/name/3``
    (alias None); None when ``uri`` is neither (callers raise their own error)."""
    match = MODEL_URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        return None
    version = match["version"]
    return match["name"], match["alias"], int(version) if version else None
