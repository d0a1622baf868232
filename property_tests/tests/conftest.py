import os

from property_tests.library import profiles

profiles.load()

# pytest's workers (-n auto) have the cores already: `verify` run by a test judges in its own
# process unless the test asks for a second one (test_judges.py).
os.environ.setdefault("BACKPROP_CHECK_JOBS", "1")
