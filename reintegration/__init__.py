"""Measure whether the reintegration of returning migrants is sustainable."""

import os

# Nothing reaches the network at run time: MLflow's usage telemetry is off for every entry point.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
