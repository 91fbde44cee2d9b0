"""The compiled twins read attacker-written text: built with AddressSanitizer and UBSan, they must run
the whole comparison without one invalid read, write or undefined operation.

Each twin (and `_c_text`) is compiled again from its source with `-fsanitize=address,undefined` (any finding aborts
the process) and loaded in a child Python process with the sanitizer runtime preloaded, where it is
compared with its Python detector on the corpus, held-out corpora, 2 KB tickets and mutated texts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from deskgate.server.redaction import native

SOURCES = Path(native.__file__).parent / "c"
REPO = Path(__file__).resolve().parents[2]

# Run in the child: load the sanitized build under the twin's module name, compare, print a count.
CHILD = """
import importlib.util, sys
from deskgate.server.redaction import detectors
from tests.redaction.twins import corpus_texts, mutations, reference, views

name, path = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location(f"deskgate.server.redaction._c_{name}", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
texts = list(corpus_texts()) + list(mutations(corpus_texts(), 3000, seed=23)) + ["", "\\U0001f600" * 50, "0" * 100_000]
if name == "text":  # fold.py's own-fold check and str.lower
    from deskgate.server.redaction import fold
    module.configure(fold)
    texts += [chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000] + ["\\u20acÉΣİ" * 1000]
    for text in texts:
        if module.lower(text) != text.lower() or module.own_fold(text) is not fold._its_own_fold(text):
            sys.exit(f"differs from the reference on {text!r}")
else:
    module.configure(detectors)
    for text in texts:
        if module.scan(*views(text)) != reference(name, text):
            sys.exit(f"differs from the Python detector on {text!r}")
    for bad in ((1, ""), ("a", b"a")):
        try:
            module.scan(*bad)
        except TypeError:
            pass
        else:
            sys.exit("a non-str argument was accepted")
print(len(texts))
"""


def _compiler() -> str:
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
            pytest.fail("no C compiler, but DESKGATE_REQUIRE_NATIVE=1")
        pytest.skip("no C compiler here: the twins are not built, so there is nothing to sanitize")
    return cc


def _runtime(cc: str, library: str) -> str:
    path = subprocess.run([cc, f"-print-file-name={library}"], capture_output=True, text=True, check=True).stdout
    if not Path(path.strip()).is_file():
        if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
            pytest.fail(f"{library} (the sanitizer runtime) is missing, but DESKGATE_REQUIRE_NATIVE=1")
        pytest.skip(f"{library} (the sanitizer runtime) is not installed with this compiler")
    return path.strip()


@pytest.mark.slow
@pytest.mark.parametrize("name", [*native.TWINS, "text"])
def test_a_twin_built_with_sanitizers_runs_the_comparison_cleanly(name: str, tmp_path: Path) -> None:
    cc = _compiler()
    source = SOURCES / f"{name}.c"
    assert source.is_file(), f"the twin's source {source} is missing"
    built = tmp_path / f"_c_{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([cc, "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-fPIC", "-shared", f"-I{sysconfig.get_paths()['include']}",
                    str(source), "-o", str(built)], check=True, capture_output=True)
    env = {**os.environ,
           "LD_PRELOAD": f"{_runtime(cc, 'libasan.so')} {_runtime(cc, 'libubsan.so')}",
           # Python's own allocations are not the twin's: leak reports would be about the interpreter.
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    child = subprocess.run([sys.executable, "-c", CHILD, name, str(built)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-4000:]
    assert int(child.stdout.strip()) > 12_000  # the whole comparison ran
