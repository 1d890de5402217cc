"""Training, apart from the library core: config (validated), the Lightning module, callbacks, fit, losses."""

from .config import TrainConfig, load_config
from .fit import fit

__all__ = ["TrainConfig", "fit", "load_config"]
