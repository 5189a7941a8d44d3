"""fracbench: score fractography VLMs (checkpoints and API models) on a hand-annotated benchmark."""

__version__ = "0.1.0"
