"""fracdata: literature-mined fractographs -> LlamaFactory datasets -> a fractography VLM.

Importing this package does nothing else: every stage imports its heavy libraries lazily.
"""

__version__ = "0.1.0"
