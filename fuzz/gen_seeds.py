#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/seeds/<target>/: a few small valid inputs per target.

Deterministic (gzip mtime 0), so re-running it reproduces the committed files byte for byte.
Run from anywhere: python3 fuzz/gen_seeds.py
"""

import gzip
import json
import struct
import zlib
from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seeds"


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def idx(dims, payload):
    """Unsigned-byte IDX: magic 00 00 08 NN, big-endian u32 dims, row-major payload."""
    assert len(payload) == eval("*".join(map(str, dims)) or "1")
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# --- idx: labels (1-D), images (3-D), a 4-D array, an empty dataset; raw and gzipped.
labels = idx([5], bytes([3, 1, 4, 1, 5]))
images = idx([2, 3, 3], bytes(range(18)))
nhwc = idx([1, 2, 2, 3], bytes(range(100, 112)))
empty = idx([0, 28, 28], b"")
write("idx", "labels-idx1-ubyte", labels)
write("idx", "images-idx3-ubyte", images)
write("idx", "nhwc-idx4-ubyte", nhwc)
write("idx", "labels-idx1-ubyte.gz", gz(labels))
write("idx", "images-idx3-ubyte.gz", gz(images))
write("idx", "empty-idx3-ubyte.gz", gz(empty))

# --- spec: strings for each grammar (every target function sees every seed).
for name, text in {
    "layers-mnist": "1000-500-250-250-250-10",
    "layers-fc": "fc:784-fc:100-10",
    "layers-conv-small": "convf:32:5:1:1-maxpool:2:2-convv:64:3:1:1-convf:64:3:1:1-maxpool:2:2-convv:128:3:1:1-convv:10:1:1:1-globalmeanpool:6:6-fc:10",
    "layers-conv-fc": "convv:1000:26:1:1-convv:10:1:1:1-globalmeanpool:0",
    "decoder-one": "gauss",
    "decoder-per-layer": "gauss-g1-g2-g3-g4-linear-0",
    "lambdas": "1000,10,0.1,0.1,0.1,0.1,0.1",
    "noise-one": "0.3",
    "seeds-range": "1-10",
    "seeds-list": "1-3, 7,9",
}.items():
    write("spec", name, text)

# --- config: TOML as `TrainConfig::to_toml` writes it, and partial files (defaults fill in).
full = """encoder_layers = "1000-500-250-250-250-10"
decoder_spec = "gauss"
denoising_cost_x = "1000,10,0.1,0.1,0.1,0.1,0.1"
labeled_samples = 100
validation_samples = 0
seed = 1
epochs = 150
lr = 0.002
lrate_decay = 0.67
batch_size = 100
super_noise_std = 0.3
f_local_noise_std = "0.3"
top_c = true
act = "relu"
num_classes = 10
eval_every = 1
"""
write("config", "mnist-100-full.toml", full)
write(
    "config",
    "baseline.toml",
    'denoising_cost_x = "0"\nf_local_noise_std = "0.5"\nlabeled_samples = 0\n',
)
write(
    "config",
    "small-leaky.toml",
    'encoder_layers = "100-10"\ndecoder_spec = "0-gauss-linear"\ndenoising_cost_x = "0,1,0.1"\n'
    'f_local_noise_std = "0.2,0.1"\nact = "leakyrelu"\nunlabeled_samples = 5000\n'
    "validation_samples = 1000\nepochs = 3\neval_every = 2\ntop_c = false\n",
)
write("config", "empty.toml", "")
# Semantic-noise configurations (003), as `SemanticConfig::to_toml` writes the CIFAR preset,
# and a partial one.
write(
    "config",
    "semantic-cifar.toml",
    'model = "perturb-class"\n'
    'layers = "convs:64:5:1:1-convs:64:3:2:2-convs:64:3:2:2-convs:96:3:2:2-fc:128-fc:128"\n'
    "num_classes = 10\nlambda_input = 0.01\nlambda_latent = 0.01\nlambda_hidden = 0.01\n"
    "lambda_supervised = 1.0\nnoise_std = 0.2\nlr = 0.002\nlr_decay_factor = 5.0\n"
    "lr_decay_every = 40\nlr_decay_until = 120\nepochs = 120\nbatch_size = 100\n"
    "per_class = 10\nvalidation_samples = 1000\nmean_subtraction = true\ncrop = 24\n"
    "flip = true\nseed = 1\n",
)
write("config", "semantic-recon-all.toml", 'model = "recon-all"\nlayers = "convs:8:3:2:2-fc:16"\n')


# --- checkpoint: LADDERCK, version u32, three u64 lengths, CRC-32 of the body, body.
def checkpoint(header, model, optimizer):
    h = json.dumps(header, separators=(",", ":")).encode()
    body = h + model + optimizer
    fixed = b"LADDERCK" + struct.pack("<I", 1)
    fixed += b"".join(struct.pack("<Q", n) for n in (len(h), len(model), len(optimizer)))
    return fixed + struct.pack("<I", zlib.crc32(body)) + body


config = {
    "encoder_layers": "784-10",
    "decoder_spec": "gauss",
    "denoising_cost_x": "1",
    "labeled_samples": 100,
    "unlabeled_samples": None,
    "validation_samples": 0,
    "seed": 1,
    "epochs": 2,
    "lr": 0.002,
    "lrate_decay": 0.67,
    "batch_size": 100,
    "super_noise_std": 0.3,
    "f_local_noise_std": "0.3",
    "top_c": True,
    "act": "relu",
    "num_classes": 10,
    "eval_every": 1,
}
def f32_bits(values):
    """StoredMoments keep f32 values as their u32 bit patterns."""
    return [struct.unpack("<I", struct.pack("<f", v))[0] for v in values]


base = {"config": config, "dims": [784, 10], "epochs_done": 1, "train_seconds": 1.5, "moments": None}
write("checkpoint", "minimal.ckpt", checkpoint(base, b"", b""))
write("checkpoint", "records.ckpt", checkpoint(base, bytes(range(32)), bytes(range(255, 239, -1))))
with_moments = dict(
    base,
    dims=[4, 3, 2],
    epochs_done=2,
    steps_done=7,
    partial_cost={
        "total": struct.unpack("<Q", struct.pack("<d", 2.5))[0],
        "supervised": struct.unpack("<Q", struct.pack("<d", 2.25))[0],
        "denoising": [struct.unpack("<Q", struct.pack("<d", 0.25))[0], None, None],
    },
    moments=[
        {"mean": f32_bits([0.0, 0.5, -1.25]), "var": f32_bits([1.0, 2.0, 0.5])},
        {"mean": f32_bits([0.1, 0.2]), "var": f32_bits([1.0, 1.0])},
    ],
)
write("checkpoint", "moments.ckpt", checkpoint(with_moments, b"\x01\x02\x03\x04", b"\x09" * 10))
write("checkpoint", "default-config.ckpt", checkpoint({**base, "config": {}}, b"m", b"o"))

# csv: Covertype-like rows (features, class 1..7 last), a headed file with the class first.
write("csv", "covertype.csv", "2596,51,3,258,0,510,221,232,148,6279,5\n2590,56,2,212,-6,390,220,235,151,6225,5\n2804,139,9,268,65,3180,234,238,135,6121,2\n")
write("csv", "header.csv", "class,a,b\n1,0.5,2\n2,1.5,-3e-2\n3,  7 ,1\n")
write("csv", "quoted.csv", '1,"2",3\n4,5,6\n\n7,8,1\n')

# cifar: 3,073-byte records (label byte, then 3,072 pixel bytes), a cut-short one, a bad label.
def cifar_record(label, salt):
    return bytes([label]) + bytes((i * 7 + salt) % 256 for i in range(3072))


write("cifar", "two-records", cifar_record(3, 1) + cifar_record(9, 2))
write("cifar", "truncated", cifar_record(1, 0)[:-5])
write("cifar", "bad-label", cifar_record(10, 0))
