from property_tests import profiles

profiles.load()
