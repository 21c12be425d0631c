"""Synthetic longitudinal RSS panels with their ground truth (see :mod:`.panel`)."""

from reintegration.synth.formats import FORMATS, write_panel, write_truth
from reintegration.synth.panel import DAYS_PER_MONTH, GENERATOR_VERSION, SynthParams, generate_panel

__all__ = [
    "DAYS_PER_MONTH",
    "FORMATS",
    "GENERATOR_VERSION",
    "SynthParams",
    "generate_panel",
    "write_panel",
    "write_truth",
]
