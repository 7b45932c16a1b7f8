"""The Singer SDK's standard tap tests, against an emulator started for this module."""

from __future__ import annotations

from singer_sdk.testing import get_tap_test_class

from tap_vobiz.tap import TapVobiz
from tests.tap_runner import emulator_config
from vobiz_emulator.dataset import Dataset
from vobiz_emulator.server import RunningEmulator

# The SDK builds the test class at import time, so the emulator must be up by then;
# it serves from a daemon thread until the test session ends.
EMULATOR = RunningEmulator(Dataset(12, 400, seed=3)).__enter__()

TestTapVobiz = get_tap_test_class(tap_class=TapVobiz, config=emulator_config(EMULATOR))
