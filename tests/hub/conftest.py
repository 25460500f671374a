import pytest

# The contracts live outside test modules: have pytest explain their failed assertions too.
# (This directory is collected before tests/store, whose contract the hub's reuses.)
pytest.register_assert_rewrite("tests.hub.contract", "tests.store.contract")
