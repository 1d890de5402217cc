"""An instant start: importing the package loads neither torch nor transformers nor ray (nor numpy), and the
command's help, version and zoo listing load none of them; the first model loads torch, --engine ray loads ray."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "ray")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _loaded_after(code: str) -> list[str]:
    done = _python(f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_no_heavy_module():
    assert _loaded_after("import clipforensics") == []
    assert "numpy" not in _python("import sys, clipforensics\nprint(sorted(sys.modules))").stdout


def test_the_public_names_load_on_first_use():
    done = _python("import sys, clipforensics\n"
                   "assert set(clipforensics.__all__) <= set(dir(clipforensics))\n"
                   "assert clipforensics.__version__ == '0.1.0' and 'torch' not in sys.modules\n"
                   "clipforensics.load, clipforensics.Predictor, clipforensics.Result\n"
                   "assert 'torch' in sys.modules")

    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error():
    import clipforensics

    with pytest.raises(AttributeError, match="no attribute 'Detectr'"):
        clipforensics.Detectr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["zoo"], ["detect", "--help"], ["localize", "--help"],
                                  ["preprocess", "--help"], ["train", "--help"], ["evaluate", "--help"],
                                  ["compare", "--help"], ["demo", "--help"]])
def test_help_version_and_zoo_load_no_heavy_module(argv):
    assert _loaded_after(f"from clipforensics.cli import main\nassert main({argv!r}) == 0") == []


def test_the_module_runs_as_the_command():
    done = subprocess.run([sys.executable, "-m", "clipforensics.cli", "--version"], capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0 and done.stdout.strip() == "clipforensics 0.1.0"
