"""The bundled digit models' data, classifier and picture output (used by train_digits.py).

Data: sklearn.datasets.load_digits (1797 images, 8x8, values 0..16; bundled, nothing is
downloaded), scaled to [-1, 1] (v / 8 - 1) and upsampled to 16x16 *bilinearly*
(F.interpolate, align_corners=False), 1 channel. The classifier sees exactly these images.
"""

import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

NUM_CLASSES = 10
NULL_CLASS = NUM_CLASSES  # every bundled model's label table has the null class last
SIZE = 16


def load_images():
    """-> (x float32 [N, 1, 16, 16] in [-1, 1], y int64 [N])."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x8 = torch.tensor(d.images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # 0..16 -> [-1, 1]
    x16 = F.interpolate(x8, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return x16.clamp(-1.0, 1.0), torch.tensor(d.target, dtype=torch.int64)


def train_classifier(x, y, seed):
    """Multinomial logistic regression on the flattened 16x16 images; held-out accuracy on 25%.
    -> (weight f32 [10, 256], bias f32 [10], accuracy, held-out count)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    xf = x.reshape(len(x), -1).numpy().astype(np.float64)
    yn = y.numpy()
    xtr, xte, ytr, yte = train_test_split(xf, yn, test_size=0.25, random_state=seed, stratify=yn)
    clf = LogisticRegression(C=0.1, max_iter=5000)
    clf.fit(xtr, ytr)
    acc = float((clf.predict(xte) == yte).mean())
    w = np.ascontiguousarray(clf.coef_, dtype=np.float32)
    b = np.ascontiguousarray(clf.intercept_, dtype=np.float32)
    return w, b, acc, len(yte)


def classify(w, b, images):
    """images [N, 1, 16, 16] in [-1, 1] -> predicted digits."""
    flat = images.reshape(len(images), -1).double().numpy()
    return np.argmax(flat @ w.T.astype(np.float64) + b.astype(np.float64), axis=1)


def write_png(path, gray):
    """8-bit grayscale PNG from a uint8 [H, W] array; atomic (temp file + rename)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + (zlib.crc32(kind + data) & 0xFFFFFFFF).to_bytes(4, "big"))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def grid_image(samples, rows, cols, zoom=4, pad=2):
    """samples [rows*cols, 1, 16, 16] in [-1, 1] -> uint8 grid, row r = digit r."""
    img = (127.5 * (samples[:, 0].clamp(-1, 1) + 1)).round().to(torch.uint8).numpy()
    s = SIZE * zoom
    out = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad), 64, dtype=np.uint8)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        big = np.kron(img[k], np.ones((zoom, zoom), dtype=np.uint8))
        out[pad + r * (s + pad):pad + r * (s + pad) + s, pad + c * (s + pad):pad + c * (s + pad) + s] = big
    return out
