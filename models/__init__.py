"""Versioned scoring models in the MLflow registry: the index versions and the risk model.

``models`` imports ``reintegration`` and, lazily, MLflow and scikit-learn; the domain never
imports ``models``. Nothing here may reach the network: telemetry is switched off before
MLflow can be imported from anywhere in the package.
"""

import os

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
