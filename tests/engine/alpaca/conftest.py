"""The loopback Alpaca emulator and settings pointing at it (tests/fakes/emulator_fixtures.py)."""

from tests.fakes.emulator_fixtures import clock, emulator, settings  # noqa: F401  (fixtures)
