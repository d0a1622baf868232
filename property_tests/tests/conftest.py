from property_tests.library import profiles

profiles.load()
