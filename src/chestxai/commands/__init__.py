"""CLI commands, one module each (see chestxai.cli)."""
