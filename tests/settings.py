"""Test settings: the product's settings plus a test-only app that records handler effects."""

from siyu.settings import *  # noqa: F401,F403
from siyu.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.effects"]
