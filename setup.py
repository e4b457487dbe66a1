"""Entry points of nni-dynamic-supernet and the nnictl templates its wheel ships.

Everything else of the packaging (metadata, dependencies, the version source) is in
``pyproject.toml``. The strategy and space lists stay plain lists here: other packages register
their own entries in the same groups, and the registry discovers every group member through
``importlib.metadata``.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STRATEGIES = ["spos", "spos_calr", "spos_ms", "spos_calr_ms", "fairnas", "fairnas_calr_ms", "fsnas", "fsnas_calr_ms",
              "sumnas", "sumnas_ms", "spos_pa", "spos_da", "pada", "pada_calr_ms", "gm_spos", "gm_spos_calr_ms",
              "gm_fairnas"]
SPACES = ["nas_bench_201", "mobilenet", "shufflenet"]

#: Repository folders copied into the wheel under nni_dynamic_supernet/_resources/templates/, so that a
#: wheel install can run the nnictl examples (nni_dynamic_supernet.templates.copy_templates).
TEMPLATE_FOLDERS = {"examples": "*.yml", "config_templates": "*.yaml"}
TEMPLATES_IN_PACKAGE = Path("nni_dynamic_supernet", "_resources", "templates")


class BuildPyWithTemplates(build_py):
    """``build_py`` that also copies the nnictl examples and recipe templates into the package.

    The repository keeps one copy of each file at the paths ``nnictl create --config
    examples/spos_calr.yml`` expects from a checkout; the wheel gets its copy at build time, so
    the two cannot differ. Editable installs read the checkout directly and skip the copy.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source in self._template_sources():
            target = Path(self.build_lib, TEMPLATES_IN_PACKAGE, source.parent.name, source.name)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib, TEMPLATES_IN_PACKAGE, s.parent.name, s.name))
                        for s in self._template_sources()]
        return outputs

    @staticmethod
    def _template_sources() -> list:
        root = Path(__file__).resolve().parent
        return [path for folder, pattern in TEMPLATE_FOLDERS.items() for path in sorted((root / folder).glob(pattern))]


if __name__ == "__main__":
    setup(
        cmdclass={"build_py": BuildPyWithTemplates},
        entry_points={
            "console_scripts": ["nds = nni_dynamic_supernet.cli:main"],
            "nni_dynamic_supernet.strategies": [f"{n} = nni_dynamic_supernet.strategies:{n}" for n in STRATEGIES],
            "nni_dynamic_supernet.spaces": [f"{n} = nni_dynamic_supernet.spaces.{n}:{n}" for n in SPACES],
        },
    )
