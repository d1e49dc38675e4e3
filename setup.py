"""Build the optional C part of the word filter (filters._native); everything else is in
pyproject.toml. ``optional=True``: without a compiler the install still succeeds and the
filter runs its pure-Python path, which gives the same verdicts (tests/filters/test_native.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "filters._native",
            ["filters/_native.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
