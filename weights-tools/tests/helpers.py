"""What the tests share: running convert.py as a user does, reading its output with the
`safetensors` package (the independent reader of what ckpt_io.py writes), expecting a
ConvertError."""

import glob
import os
import subprocess
import sys

import pytest

from archs import ConvertError

TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # weights-tools/


def run_convert(*args):
    """convert.py in a fresh interpreter -> (exit code, stdout, stderr)."""
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "convert.py"), *map(str, args)],
                       capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def expect_refused(args, out, *needles):
    """convert.py ARGS OUT fails: exit 2, one line on stderr naming every needle, OUT (an existing
    file) untouched and no temp file left beside it. -> the line."""
    with open(out, "w") as f:
        f.write("sentinel")
    rc, _, err = run_convert(*args, out)
    assert rc == 2, (rc, err)
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    assert open(out).read() == "sentinel", "output was touched"
    assert not glob.glob(os.path.join(os.path.dirname(str(out)), f".{os.path.basename(str(out))}.*")), \
        "temp file left behind"
    return err


def read_with_package(path, framework="numpy"):
    """-> ({key: tensor}, metadata), read by the `safetensors` package."""
    safe_open = pytest.importorskip("safetensors").safe_open
    with safe_open(str(path), framework=framework) as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def expect_convert_error(fn, *needles):
    """fn() must raise ConvertError with every needle in its message; -> the message."""
    with pytest.raises(ConvertError) as e:
        fn()
    for n in needles:
        assert n in str(e.value), (n, str(e.value))
    return str(e.value)


def random_state_dict(model_cls, cfg, seed):
    """A checkpoint as the official code saves one: the state_dict of `model_cls` built from `cfg`,
    every parameter drawn N(0, 1) (buffers as built)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = model_cls.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return {k: v.clone() for k, v in model.state_dict().items()}
