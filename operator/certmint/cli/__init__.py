"""The command lines: ``certmint`` and its ``kubectl certmint`` plugin."""
