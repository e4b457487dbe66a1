"""Packaging of nni-dynamic-supernet: dependencies, entry points and the ``nds`` command."""
from pathlib import Path

from setuptools import find_packages, setup

STRATEGIES = ["spos", "spos_calr", "spos_ms", "spos_calr_ms", "fairnas", "fairnas_calr_ms", "fsnas", "fsnas_calr_ms",
              "sumnas", "sumnas_ms", "spos_pa", "spos_da", "pada", "pada_calr_ms", "gm_spos", "gm_spos_calr_ms",
              "gm_fairnas"]
SPACES = ["nas_bench_201", "mobilenet", "shufflenet"]

setup(
    name="nni-dynamic-supernet",
    version="0.1.0",
    description="Supernet training that ranks subnets correctly (CaLR, MS, GM-NAS, PA&DA, SUMNAS, shifting) for NNI 3.0",
    long_description=Path(__file__).with_name("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["nni_dynamic_supernet", "nni_dynamic_supernet.*"]),
    package_data={"nni_dynamic_supernet": ["_resources/*.json", "_resources/*.yaml"]},
    install_requires=[
        "nni==3.0",
        "torch>=2.1,<2.15",
        "torchvision",
        "numpy",
        "scipy",
        "scikit-learn",
        "json-tricks",
        "pytorch-lightning>=2.0,<2.7",
        "matplotlib",
        "PyYAML",
        "tqdm",
        "tensorboard",
        "peewee>=3.14,<4",
        "setuptools>=77.0.3,<81",
    ],
    extras_require={"test": ["pytest>=7", "selenium>=4.10"]},
    entry_points={
        "console_scripts": ["nds = nni_dynamic_supernet.cli:main"],
        "nni_dynamic_supernet.strategies": [f"{n} = nni_dynamic_supernet.strategies:{n}" for n in STRATEGIES],
        "nni_dynamic_supernet.spaces": [f"{n} = nni_dynamic_supernet.spaces.{n}:{n}" for n in SPACES],
    },
)
