"""The real NUT upsd fixture (``nut``), for every power test that asks for it."""

from tests.collectors.power.helpers import nut  # noqa: F401  (the fixture)
