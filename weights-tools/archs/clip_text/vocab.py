"""CLIP's BPE vocabulary (openai/CLIP, MIT licence): the 48894 merges CLIP uses and the 49408-id
vocabulary they imply, read from any of the places it ships in:

  - transformers' tokenizer files: vocab.json + merges.txt (a "#version" first line);
  - open_clip's / openai's bpe_simple_vocab_16e6.txt.gz (a header line, then 262144 merges of
    which CLIP takes the first 48894).

The ids are fixed by the merges: the 256 byte symbols of bytes_to_unicode(), the same with
"</w>", one id per merge in order, then <|startoftext|> (49406) and <|endoftext|> (49407).
ditrt stores only the merges (tensor `tokenizer.bpe_merges`, UTF-8 lines "a b") and rebuilds
the ids the same way; a vocab.json that differs from that is refused.
"""

import gzip
import json
import os

from archs import ConvertError

NUM_MERGES = 49152 - 256 - 2  # CLIP's vocabulary: 49408 ids = 2 * 256 byte symbols + merges + 2
BOS, EOS = 49406, 49407


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map, in CLIP's order (the order of the
    first 256 ids): the printable Latin-1 bytes first, mapped to themselves, then the other 68
    bytes in byte order, mapped to U+0100 onwards."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in keep}
    for n, b in enumerate(b for b in range(256) if b not in chars):
        chars[b] = chr(256 + n)
    return chars


def vocab_from_merges(merges):
    """token -> id for a list of (a, b) merges."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def _parse(lines, origin):
    merges = []
    for n, line in enumerate(lines):
        parts = line.split()
        if len(parts) != 2:
            raise ConvertError(f"{origin}: merge {n + 1} is not two symbols: {line!r}")
        merges.append(tuple(parts))
    if len(merges) < NUM_MERGES:
        raise ConvertError(f"{origin}: {len(merges)} merges, CLIP's vocabulary needs {NUM_MERGES}")
    return merges[:NUM_MERGES]


def read_merges(path):
    """The CLIP merges from a folder (vocab.json + merges.txt) or a bpe_simple_vocab .txt.gz."""
    if os.path.isdir(path):
        merges_path, vocab_path = os.path.join(path, "merges.txt"), os.path.join(path, "vocab.json")
        if not os.path.exists(merges_path):
            raise ConvertError(f"{path}: no merges.txt (a tokenizer folder holds vocab.json and merges.txt)")
        with open(merges_path, encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n") if l and not l.startswith("#version")]
        merges = _parse(lines, merges_path)
        if os.path.exists(vocab_path):
            with open(vocab_path, encoding="utf-8") as f:
                vocab = json.load(f)
            if vocab != vocab_from_merges(merges):
                raise ConvertError(f"{vocab_path}: not the vocabulary CLIP's merges imply (ids differ); ditrt rebuilds the ids from merges.txt")
        return merges
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]  # the first line is a header
    return _parse([l for l in lines if l], path)


def merges_text(merges):
    """What ditrt stores: one "a b" line per merge."""
    return "\n".join(f"{a} {b}" for a, b in merges) + "\n"


def write_tokenizer_folder(merges, folder):
    """vocab.json + merges.txt as transformers' CLIPTokenizer reads them."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab_from_merges(merges), f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + merges_text(merges))
