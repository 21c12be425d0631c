"""Named domain errors. Only ``api/`` and the CLI turn them into responses or exit codes."""

from __future__ import annotations


class ReintegrationError(Exception):
    """Base of every error the domain raises on purpose; its message is meant for people."""


class SpecError(ReintegrationError):
    """The questionnaire spec file is malformed."""


class UnreadableFileError(ReintegrationError):
    """A batch file cannot be read as any supported format."""


class MissingColumnsError(ReintegrationError):
    """A batch lacks a column that the command requires."""


class ConsentColumnError(MissingColumnsError):
    """A batch has no consent column and its uploader did not declare that consent was
    recorded outside the form."""


class IndexParameterError(ReintegrationError):
    """An index version was given weights or thresholds that break RSS.md's rules."""


class SynthError(ReintegrationError, ValueError):
    """The synthetic generator was asked for something it cannot make or write."""


class FormWriteError(ReintegrationError):
    """The XLSForm cannot be written where asked."""


class ConfigurationError(ReintegrationError):
    """The settings are missing or contradictory (e.g. production without a secret)."""


class UserError(ReintegrationError):
    """A user or token cannot be added or removed as asked (a taken name, an unknown role)."""


class QueryError(ReintegrationError):
    """An aggregate was asked for something it cannot answer (an unknown grouping)."""


class ModelError(ReintegrationError):
    """A model cannot be trained, found, loaded or promoted as asked."""


class PromotionRefused(ModelError):
    """The promotion gate refused a model version; the message names the metric and group."""


class JobError(ReintegrationError):
    """A background job cannot be submitted or read as asked."""


class DemoError(ReintegrationError):
    """The demo cannot set up its data folder or its server (a foreign folder, a taken port)."""


class Forbidden(ReintegrationError):
    """The caller's role or country limit does not allow what they asked for."""
