"""The mutation run (`make mutate`): measures the test suite; never part of `make test`.

Importing these modules does nothing: pytest imports them for ``--doctest-modules``.
"""
