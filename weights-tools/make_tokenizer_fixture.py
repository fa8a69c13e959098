#!/usr/bin/env python3
"""Write the CLIP tokenizer fixture and the vocabulary the Rust tests read:

  tests/fixtures/clip_bpe_merges.txt.gz  CLIP's 48894 merges, one "a b" line each (the text
                                         `tokenizer.bpe_merges` holds), gzip without a timestamp
  tests/fixtures/clip_tokenizer.json     {"reference": ..., "cases": [{"prompt", "tokens", "ids"}]}:
                                         every prompt's 77 ids and its token count before truncation

run: python3 weights-tools/make_tokenizer_fixture.py VOCAB [--open-clip DIR] [--out-dir DIR]
  VOCAB: a transformers tokenizer folder (vocab.json + merges.txt) or bpe_simple_vocab_16e6.txt.gz.
The reference is what U-ViT's FrozenCLIPEmbedder calls: transformers' slow CLIPTokenizer (needs
transformers < 5, which still has it) with ftfy installed, padding="max_length", truncation=True,
max_length=77. With --open-clip (a folder holding open_clip/tokenizer.py) the ids are also compared
with open_clip's SimpleTokenizer and the prompts where the two differ are printed (open_clip pads
with 0 and html.unescape's twice after ftfy; transformers splits at literal special tokens first).
Prompts that ftfy's mojibake repair (fix_encoding), which ditrt leaves out, would change are refused.
"""

import argparse
import gzip
import json
import os
import random
import sys
import tempfile

import ftfy

from archs.clip_text.vocab import BOS, EOS, merges_text, read_merges, write_tokenizer_folder

CONTEXT = 77

COCO = [
    "A man riding a wave on top of a surfboard.",
    "A group of people standing around a kitchen.",
    "Two giraffes standing next to each other in a field.",
    "a red double decker bus driving down a city street",
    "A plate of food with broccoli, rice and chicken.",
    "A cat sitting on top of a laptop computer.",
    "An elephant walking through tall grass near trees.",
    "A black and white photo of a train at the station",
    "Several zebras grazing in the savanna under a blue sky",
    "A woman holding an umbrella in the rain.",
    "a bowl of fruit: apples, bananas & oranges",
    "The kitchen has stainless steel appliances and granite countertops.",
    "A skier is skiing down a snowy mountain slope",
    "A pizza with pepperoni and mushrooms on a wooden table",
    "a small dog chasing a frisbee in the park",
    "Traffic lights hanging over an intersection at night.",
    "a close-up of a stop sign with graffiti on it",
    "A baseball player swinging a bat at a ball.",
    "Kids flying kites on a windy beach",
    "an old clock tower against a cloudy sky",
]

HANDWRITTEN = [
    # punctuation
    "Wait... what?!", "(left) [right] {center}", "a--b -- c — d – e", "e-mail me at foo@example.com",
    "#hashtag @user $cash", "50% off!!!", "C++ & C# & F#", "~/path/to/file.txt", "a/b\\c|d",
    'she said "hi" and left', "*** bold *** ___ under ___", "?!?!?!", "...", ",,,", "a.b.c.d",
    "<>", "x<y>z", "1+1=2", "semi;colon:colon", "¿Qué? ¡Sí!", "«guillemets» „low“",
    # digits and times
    "3:45pm", "at 10:30 a.m. on 12/25/2023", "1,000", "1,000,000 stars", "3.14159", "2024-01-15",
    "$19.99", "1st 2nd 3rd 4th", "24/7", "10x faster", "0.5mm", "+1 (555) 123-4567",
    "100000000000", "the year 1984", "a 4k tv", "route 66", "4x4 truck", "7", "0",
    # accents and other scripts
    "café crème brûlée", "naïve façade", "São Paulo at dusk", "Zürich", "Ñandú", "Ångström",
    "Dvořák", "cafe\u0301 with a combining accent", "A\u030angstro\u0308m", "İstanbul",
    "ΟΔΥΣΣΕΥΣ", "Straße und STRASSE", "ẞ", "ǅemal", "œuvre Æther", "Łódź", "crème de la crème",
    "一只猫坐在桌子上", "東京タワーの夜景", "서울의 거리", "a cat 猫 in Tokyo 東京",
    "Красная площадь в Москве", "собака на пляже", "Ёжик в тумане", "قطة على السجادة",
    "חתול על השטיח", "एक बिल्ली", "แมวนอนบนโซฟา", "Γάτα στον καναπέ", "ქალაქი", "Հայաստան",
    "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐", "Ⅻ o'clock", "x² + y² = z²", "½ cup", "Ⓐ circled", "ᾳ and a\u0345b",
    "٣ Arabic digits ٤٥", "１２３ fullwidth digits",
    # emoji
    "a dog 🐶 on the beach 🏖️", "👨‍👩‍👧‍👦 family", "🇯🇵 flag", "❤️ love", "👍🏽", "🔥🔥🔥",
    "😀😃😄😁", "a 🚀 launching into 🌌",
    # odd whitespace
    "a\tcat\twith\ttabs", "line one\nline two", "windows\r\nline\r\nbreaks", "old mac\rbreak",
    "no\u00a0break\u00a0space", "em\u2003space", "ideographic\u3000space", "zero\u200bwidth",
    "zero\u200cnon\u200djoiner", "\ufeffbyte order mark", "line\u2028separator", "para\u2029graph",
    "   leading and trailing   ", "   ", "", "\n\n\n", "a \t \n b", "\u2009thin\u200aspaces\u202f",
    # HTML entities
    "Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot;", "caf&eacute;", "P&EACUTE;REZ",
    "BUNDESSTRA&SZLIG;E", "it&#39;s", "don&#x2019;t", "&#8220;hi&#8221;", "&nbsp;space",
    "a &lt; b &amp; c", "<b>bold</b> &amp; more", "first &amp;\n<tag> &amp; then", "&amp;amp;",
    "wait&hellip;", "yes&mdash;no", "&copy; 2024 &reg; &trade;", "&#59;", "&#0;", "&#x1F600;",
    "&notanentity;", "&amp no semicolon", "&AMP; &LT; &GT;", "&#65;&#x42;&#X43;", "&#12ab;",
    "&#99999999999;", "&eacute&eacute;", "&Ntilde; &NTILDE; &nTILDE;", "x &#x85; y",
    # curly quotes
    "\u201cHello,\u201d she said.", "\u2018single\u2019", "don\u2019t stop", "\u201breversed\u201f",
    "it\u02bcs", "\u201cit\u2019s a \u2018test\u2019\u201d",
    # ligatures
    "\ufb01sh and \ufb02owers", "e\ufb03cient", "\u0133ssel", "\u01c6", "\ufb06op", "\ufb00 \ufb04",
    # fullwidth and halfwidth
    "ＬＯＵＤ　ＮＯＩＳＥＳ", "ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", "ﾊﾟﾝ", "ｶﾞｷﾞｸﾞ", "￥100 ￡5", "Ｕﾀｰﾝ",
    # contractions
    "I'm here", "you're right", "we've been", "they'll go", "he'd say", "can't won't",
    "IT'S LOUD", "Y'ALL", "o'clock", "rock'n'roll", "'s alone", "it's'", "''", "l'été",
    "it'ſ", "the dog's bone's shape",
    # control characters and terminal escapes
    "null\x00char", "\x07bell", "\x1b[31mred\x1b[0m text", "del\x7fete", "vt\x0btab", "ff\x0cfeed",
    "\u206adeprecated", "obj\ufffcreplacement", "interlinear\ufff9x\ufffbz",
    # special tokens in the text
    "<|startoftext|>", "a photo<|endoftext|>of a cat", "<|ENDOFTEXT|>", "<|endoftext|> &amp; more",
    "&lt;|endoftext|&gt;", "＜|endoftext|＞", "<|startoftext|><|endoftext|>",
    # long words, long digit runs
    "supercalifragilisticexpialidocious " * 3, "1234567890" * 3, "antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x" * 300,
]

SUBJECTS = ["a dog", "two cats", "an old man", "a young woman", "a red car", "three horses",
            "a flock of birds", "a child", "a chef", "a tabby kitten", "a vintage bicycle"]
ACTIONS = ["sitting on", "running across", "standing next to", "sleeping under", "looking at",
           "parked near", "jumping over", "eating lunch at"]
PLACES = ["a wooden bench", "the beach", "a busy street", "a snowy field", "a kitchen table",
          "the Eiffel Tower", "a lake at sunset", "a crowded market", "a stone bridge"]
STYLES = ["", ", oil painting", ", photo, 35mm", " in the style of Van Gogh", ", 4K, highly detailed",
          ", black & white", " (1950s)", ", trending on ArtStation"]


def generated_prompts(rng):
    """MS-COCO-like captions from a seeded grammar, then over-long ones (> 75 tokens)."""
    out = []
    for _ in range(70):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}{rng.choice(STYLES)}"
        out.append(s[0].upper() + s[1:] + rng.choice([".", "", "!"]))
    for n in range(12):
        out.append(" ".join(rng.sample(COCO, 4 + n % 5)))
    out.append("a cat, " * 40)
    out.append("一只猫" * 40)
    out.append("🐶" * 80)
    return out


def slow_clip_tokenizer(merges):
    import transformers
    from transformers import CLIPTokenizer

    folder = tempfile.mkdtemp()
    write_tokenizer_folder(merges, folder)
    tok = CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    assert tok.fix_text is ftfy.fix_text, "the slow CLIPTokenizer must use ftfy (pip install ftfy)"
    return tok, f"transformers {transformers.__version__} CLIPTokenizer (slow) + ftfy {ftfy.__version__}"


def open_clip_ids(folder, vocab, prompts):
    sys.path.insert(0, folder)
    from open_clip.tokenizer import SimpleTokenizer

    bpe = vocab if vocab.endswith(".gz") else os.path.join(folder, "open_clip", "bpe_simple_vocab_16e6.txt.gz")
    tok = SimpleTokenizer(bpe)
    return [[EOS if i == 0 else i for i in row] for row in tok(prompts, context_length=CONTEXT).tolist()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("vocab")
    ap.add_argument("--open-clip", help="folder holding open_clip/tokenizer.py, to compare with")
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
    args = ap.parse_args()

    merges = read_merges(args.vocab)
    tok, reference = slow_clip_tokenizer(merges)
    prompts = COCO + HANDWRITTEN + generated_prompts(random.Random(19))
    mojibake = [p for p in prompts if ftfy.fix_text(p) != ftfy.fix_text(p, fix_encoding=False)]
    assert not mojibake, f"prompts ftfy's mojibake repair changes (ditrt does not repair mojibake): {mojibake}"
    assert len(set(prompts)) == len(prompts), "a prompt is listed twice"

    cases = []
    for p in prompts:
        ids = tok(p, padding="max_length", truncation=True, max_length=CONTEXT)["input_ids"]
        tokens = len(tok(p, add_special_tokens=False)["input_ids"])
        assert len(ids) == CONTEXT and ids[0] == BOS and ids[min(tokens, CONTEXT - 2) + 1] == EOS
        cases.append({"prompt": p, "tokens": tokens, "ids": ids})
    if args.open_clip:
        for case, other in zip(cases, open_clip_ids(args.open_clip, args.vocab, prompts)):
            if case["ids"] != other:
                print(f"open_clip differs: {case['prompt']!r}")

    os.makedirs(args.out_dir, exist_ok=True)
    with gzip.GzipFile(os.path.join(args.out_dir, "clip_bpe_merges.txt.gz"), "wb", compresslevel=9, mtime=0) as f:
        f.write(merges_text(merges).encode("utf-8"))
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    head = json.dumps({"reference": reference + ', padding="max_length", truncation=True, max_length=77'})
    with open(os.path.join(args.out_dir, "clip_tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(head[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")
    long = sum(c["tokens"] > CONTEXT - 2 for c in cases)
    print(f"{len(cases)} prompts ({long} over 75 tokens) -> {args.out_dir}/clip_tokenizer.json; {reference}")


if __name__ == "__main__":
    main()
