"""Adapters to the outside world: the only code in Trellis that does I/O to other systems."""
