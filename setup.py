"""The one compiled module (``reintegration.kernels``, Cython); everything else is in
``pyproject.toml``."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("reintegration.kernels", ["reintegration/kernels.pyx"])],
        compiler_directives={"language_level": "3"},
    )
)
