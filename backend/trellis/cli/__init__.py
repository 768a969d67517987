"""The ``trellis`` command: the Typer app (``app``) and the presenters that print its reports."""
