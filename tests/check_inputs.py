#!/usr/bin/env python3
"""Only the [realworld] cases read the kube-prometheus corpus beside the repository.

A bare clone has no ../shared: a test of general behaviour that reads it fails there (issue 18).
Every reach for the corpus goes through tests/support/inputs.hpp (kube_prometheus(),
realworld_dir()); this check finds each use in the test sources and requires it to sit in a
TEST_CASE tagged [realworld] that calls SOVDEV_SKIP_WITHOUT_REALWORLD(), and that nothing
names ../shared, SOVDEV_REALWORLD_DIR or the build-time default but the few files allowed to.
Usage: check_inputs.py [SOURCE_DIR]   (exit 1 listing every offence)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
# Files that define where the corpus is, and the selftest whose corpus case skips itself.
ALLOWED = {"tests/support/inputs.hpp", "tests/CMakeLists.txt", "tests/check_inputs.py",
           "tests/fake-kube-apiserver/selftest_realworld.sh"}
NAMES_CORPUS = re.compile(r"shared/realworld|\.\./shared|SOVDEV_REALWORLD|SOVDEV_SHARED_DIR|shared_dir\(")
USES_CORPUS = re.compile(r"\bkube_prometheus\(|\brealworld_dir\(|\brealworld_present\(")
CASE = re.compile(r"^TEST_CASE\(", re.M)


def main():
    offences = []
    for path in sorted((ROOT / "tests").rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if not path.is_file() or rel in ALLOWED or rel.startswith("tests/fixtures/"):
            continue
        if path.suffix not in (".cpp", ".hpp", ".h", ".sh", ".py", ".txt", ".cmake"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in NAMES_CORPUS.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            offences.append(f"{rel}:{line}: names the corpus' location ({m.group(0)}): use tests/support/inputs.hpp")
        starts = [m.start() for m in CASE.finditer(text)]
        cases = [text[s:e] for s, e in zip(starts, starts[1:] + [len(text)])]

        def guarded(case):
            return "[realworld]" in case[:case.find("{")] and "SOVDEV_SKIP_WITHOUT_REALWORLD();" in case

        for m in USES_CORPUS.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = [i for i, s in enumerate(starts) if s < m.start()]
            if not before:
                # A helper ahead of the cases: fine when only guarded cases can call it.
                if not cases or not all(guarded(c) for c in cases):
                    offences.append(f"{rel}:{line}: a helper reads the corpus in a file with cases "
                                    "not tagged [realworld]: pass the folder in from the case")
                continue
            case = cases[before[-1]]
            if not guarded(case):
                name = re.search(r'"([^"]*)"', case[:case.find("{")])
                offences.append(f"{rel}:{line}: the case {name.group(1) if name else '?'!r} reads the corpus "
                                "but is not tagged [realworld] with SOVDEV_SKIP_WITHOUT_REALWORLD()")
    for o in offences:
        print(o)
    print(f"check_inputs: {len(offences)} offences")
    return 1 if offences else 0


if __name__ == "__main__":
    sys.exit(main())
