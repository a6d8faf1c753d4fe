"""Model versions in the MLflow Model Registry: publish, gate, roll back, and follow an alias.

`ModelRegistry` registers each published model (NNModel, NNClassifierModel, or a model file
InferenceModel reads) as a version tagged with its training metrics, the stream offsets it has
seen and its parent; `ModelRegistry.gate` moves the ``champion`` alias to a version whose
held-out metric (`evaluate`) does not regress; ``resolve("models:/name@champion")`` gives serving
a local file. `flavor` is the Zoo MLflow flavor (``log_model``, ``save_model``, ``load_model``,
pyfunc). Alias moves are published on Redis (`alias_channel`) for services that follow them.
"""

from zoo.registry import flavor
from zoo.registry.defaults import alias_channel, default_tracking_uri, zoo_home
from zoo.registry.errors import RegistryError
from zoo.registry.evaluate import evaluate
from zoo.registry.registry import GateDecision, ModelRegistry, ResolvedModel, VersionInfo

__all__ = [
    "ModelRegistry",
    "GateDecision",
    "VersionInfo",
    "ResolvedModel",
    "RegistryError",
    "evaluate",
    "alias_channel",
    "default_tracking_uri",
    "zoo_home",
]
