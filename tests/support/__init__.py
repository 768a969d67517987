"""Shared helpers for the Trellis test suite."""
