"""What a wheel install gets: metadata, one version, the license, typing marker and the nnictl examples."""
from __future__ import annotations

import ast
import email
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import nni_dynamic_supernet
from nni_dynamic_supernet.catalog import _BUILTIN_SPACES
from nni_dynamic_supernet.strategies import PRESETS as _BUILTIN_STRATEGIES
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.templates import TEMPLATE_FOLDERS, copy_templates, template_files

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _setup_py_value(name: str) -> object:
    """A module-level literal of setup.py, read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name}")


def _repo_templates() -> list[Path]:
    return sorted(path.relative_to(REPO) for folder, pattern in TEMPLATE_FOLDERS.items()
                  for path in (REPO / folder).glob(pattern))


# ------------------------------------------------------------------------------------------- templates
def test_copy_templates_writes_the_repositorys_examples(tmp_path: Path) -> None:
    written = copy_templates(tmp_path / "out")
    assert [p.relative_to(tmp_path / "out") for p in written] == _repo_templates()
    for rel in _repo_templates():  # the installed copies are the repository's files, byte for byte
        assert (tmp_path / "out" / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    assert Path("examples/spos_calr.yml") in template_files()


def test_copied_examples_find_their_templates(tmp_path: Path) -> None:
    # An example names its trial code directory as the folder above it and its recipe inside that folder.
    import shlex

    import yaml
    copy_templates(tmp_path)
    for example in sorted((tmp_path / "examples").glob("*.yml")):
        config = yaml.safe_load(example.read_text())
        master = config["trainingService"].get("master", {})  # Kubeflow names them per role
        argv = shlex.split(config.get("trialCommand") or master["command"])
        code_dir = (example.parent / (config.get("trialCodeDirectory") or master["codeDirectory"])).resolve()
        assert (code_dir / argv[argv.index("--config") + 1]).is_file(), example.name


def test_copy_templates_never_replaces_a_file_silently(tmp_path: Path) -> None:
    copy_templates(tmp_path)
    edited = tmp_path / "config_templates" / "spos.yaml"
    edited.write_text("strategy: spos\n")
    with pytest.raises(ConfigError, match="already holds"):
        copy_templates(tmp_path)
    assert edited.read_text() == "strategy: spos\n"
    copy_templates(tmp_path, overwrite=True)
    assert edited.read_bytes() == (REPO / "config_templates" / "spos.yaml").read_bytes()


def test_copy_templates_refuses_a_file_as_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        copy_templates(target)


def test_setup_copies_the_folders_the_package_reads() -> None:
    assert _setup_py_value("TEMPLATE_FOLDERS") == TEMPLATE_FOLDERS


# ------------------------------------------------------------------------------------------- metadata
def test_one_version_source() -> None:
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nni_dynamic_supernet.__version__"}
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert "version=" not in (REPO / "setup.py").read_text()
    try:
        installed = metadata.version("nni-dynamic-supernet")
    except metadata.PackageNotFoundError:
        pytest.skip("the package is not installed")
    assert installed == nni_dynamic_supernet.__version__


def test_python_floor_matches_the_pins() -> None:
    # numpy, scipy, scikit-learn and matplotlib as resolved beside torch 2.14.1 need Python 3.11.
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert sys.version_info >= (3, 11)
    assert "Programming Language :: Python :: 3.11" in PYPROJECT["project"]["classifiers"]


def test_the_package_under_test_is_the_installed_wheel_when_ci_says_so() -> None:
    # .ci/run sets NDS_EXPECT_INSTALLED=1 in the venv where the wheel is installed non-editable.
    if os.environ.get("NDS_EXPECT_INSTALLED") != "1":
        pytest.skip("not the wheel run of CI")
    package = Path(nni_dynamic_supernet.__file__).resolve().parent
    assert package != REPO / "nni_dynamic_supernet" and "site-packages" in package.parts, package


def test_wheel_holds_license_typing_marker_examples_and_entry_points(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.rst", "LICENSE", "MANIFEST.in", "CHANGELOG.rst", "setup.cfg"):
        shutil.copy(REPO / name, source / name)
    for folder in ("nni_dynamic_supernet", *TEMPLATE_FOLDERS):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           str(source), "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    version = nni_dynamic_supernet.__version__
    info = f"nni_dynamic_supernet-{version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert f"{info}/licenses/LICENSE" in names
        assert "nni_dynamic_supernet/py.typed" in names
        assert not any(n.startswith(("tests/", "benchmarks/", "docs/")) for n in names)
        for rel in _repo_templates():
            packaged = f"nni_dynamic_supernet/_resources/templates/{rel.as_posix()}"
            assert zf.read(packaged) == (REPO / rel).read_bytes(), rel
        meta = email.message_from_bytes(zf.read(f"{info}/METADATA"))
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert meta["Version"] == version and meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT"
    assert "nds = nni_dynamic_supernet.cli:main" in entry_points
    for name in _BUILTIN_STRATEGIES:
        assert f"{name} = nni_dynamic_supernet.strategies:{name}" in entry_points
    for name in _BUILTIN_SPACES:
        assert f"[nni_dynamic_supernet.spaces]" in entry_points and f"\n{name} = " in entry_points
