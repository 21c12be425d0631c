"""reintegration package."""
