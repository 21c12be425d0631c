"""The model lifecycle commands: ``reintegration train {index,risk}`` and ``reintegration models``.

Registered on the root command by ``reintegration/cli.py``. Nothing heavy is imported at module
level: MLflow and scikit-learn load inside the command that needs them.
"""

from __future__ import annotations

import typer

train_app = typer.Typer(
    help="Train a model and register it as the challenger.", no_args_is_help=True
)
models_app = typer.Typer(help="List and promote model versions.", no_args_is_help=True)
