"""The weight shapes of real models' linear layers, from their published configs (config.json:
hidden_size, intermediate_size, num_attention_heads, num_key_value_heads; head_dim =
hidden_size / num_attention_heads for all of these).

Each decoder layer has four GEMMs, out = x @ W.t() with W of shape (N, K):

    qkv_proj     K = hidden                 N = (heads + 2 * kv_heads) * head_dim   TP splits N
    o_proj       K = heads * head_dim       N = hidden                              TP splits K
    gate_up_proj K = hidden                 N = 2 * intermediate                    TP splits N
    down_proj    K = intermediate           N = hidden                              TP splits K

Under tensor parallelism the column-parallel layers (qkv, gate_up) split N and the row-
parallel ones (o, down) split K across the TP ranks; each rank runs one shard.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


MODEL_CONFIGS: dict[str, ModelConfig] = {
    "meta-llama/Llama-3.1-8B-Instruct": ModelConfig(4096, 14336, 32, 8),
    "meta-llama/Llama-3.1-70B-Instruct": ModelConfig(8192, 28672, 64, 8),
    "meta-llama/Llama-3.1-405B-Instruct": ModelConfig(16384, 53248, 128, 8),
    "meta-llama/Llama-2-7b-hf": ModelConfig(4096, 11008, 32, 32),
    "meta-llama/Llama-2-13b-hf": ModelConfig(5120, 13824, 40, 40),
    "meta-llama/Llama-2-70b-hf": ModelConfig(8192, 28672, 64, 8),
    "mistralai/Mistral-7B-v0.1": ModelConfig(4096, 14336, 32, 8),
    "Qwen/Qwen2.5-7B-Instruct": ModelConfig(3584, 18944, 28, 4),
    "Qwen/Qwen2.5-72B-Instruct": ModelConfig(8192, 29568, 64, 8),
}

LAYER_NAMES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass(frozen=True)
class LinearShape:
    """One linear layer's GEMM on one TP rank: out (M, N) = x (M, K) @ W.t(), W (N, K)."""

    model: str
    tp: int
    layer: str
    k: int
    n: int
    split: str  # "n" (column-parallel) or "k" (row-parallel): the dimension TP divides

    def label(self) -> str:
        return f"{self.model} TP{self.tp} {self.layer}"


def resolve_model(name: str) -> str:
    """The full name of a known model: its exact name, or the part after the '/' (any case).
    Raises ValueError naming the known models otherwise."""
    if name in MODEL_CONFIGS:
        return name
    matches = [
        full
        for full in MODEL_CONFIGS
        if name.lower() in (full.lower(), full.split("/", 1)[-1].lower())
    ]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_CONFIGS)}")


def linear_layers(model: str, tp: int = 1) -> list[LinearShape]:
    """The four linear layers of `model` on one of `tp` ranks, in LAYER_NAMES order. Raises
    ValueError for an unknown model, a TP size below 1, or one that does not divide a
    layer's split dimension."""
    model = resolve_model(model)
    if not isinstance(tp, int) or tp < 1:
        raise ValueError(f"TP size must be a positive integer, got {tp!r}")
    c = MODEL_CONFIGS[model]
    heads_dim = c.num_attention_heads * c.head_dim
    full = (
        ("qkv_proj", c.hidden_size, (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim, "n"),
        ("o_proj", heads_dim, c.hidden_size, "k"),
        ("gate_up_proj", c.hidden_size, 2 * c.intermediate_size, "n"),
        ("down_proj", c.intermediate_size, c.hidden_size, "k"),
    )
    shapes = []
    for layer, k, n, split in full:
        size = n if split == "n" else k
        if size % tp:
            raise ValueError(
                f"{model} {layer}: TP {tp} does not divide its split dimension "
                f"{split.upper()} = {size}"
            )
        if split == "n":
            n //= tp
        else:
            k //= tp
        shapes.append(LinearShape(model, tp, layer, k, n, split))
    return shapes


def weight_shapes(model: str, tp: int = 1) -> list[tuple[int, int]]:
    """(K, N) of the four linear layers of `model` on one of `tp` ranks (see linear_layers)."""
    return [(shape.k, shape.n) for shape in linear_layers(model, tp)]
