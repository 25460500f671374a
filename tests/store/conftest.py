import pytest

# The contract lives outside a test module: have pytest explain its failed assertions too.
pytest.register_assert_rewrite("tests.store.contract")
