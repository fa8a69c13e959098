"""The plain-python runner of the test_*.py self-tests (no pytest needed)."""

import shutil


def run(namespace, scratch_dir):
    """Run every callable `test_*` in `namespace` (a module's globals()), reporting each and
    carrying on after a failure; remove `scratch_dir` only when all pass. Returns the exit code."""
    tests = [(k, v) for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"PASS {name}")
        except Exception as e:  # report and carry on
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    if failed:
        print(f"{failed} of {len(tests)} failed (scratch files kept in {scratch_dir})")
        return 1
    shutil.rmtree(scratch_dir)
    print(f"all {len(tests)} passed")
    return 0
