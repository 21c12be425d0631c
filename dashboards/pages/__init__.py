"""The dashboard's pages: one module per page, each registering itself first."""
