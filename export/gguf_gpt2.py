"""Write a GPT-2 checkpoint as a GGUF file llama.cpp loads (F16 or Q8_0), with the `gguf` package.

Follows llama.cpp's convert_hf_to_gguf for GPT2LMHeadModel: GPT-2's Conv1D weights are stored
[in, out] and are transposed; the attention masks ("attn.bias") are dropped; 1-D tensors and the
position embeddings stay F32; the output head is tied to the token embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.errors import ToolchainError

OUT_TYPES = ("f16", "q8_0")
_CONV1D = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")
_SKIP = (".attn.bias", ".attn.masked_bias", "lm_head.weight")


def _token_types(tokenizer: Any, n_vocab: int) -> tuple[list[str], list[int]]:
    """Token strings by id and their llama.cpp token types (normal / control / user-defined)."""
    import gguf

    by_id = {idx: tok for tok, idx in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    special = set(tokenizer.all_special_tokens)
    tokens: list[str] = []
    types: list[int] = []
    for idx in range(n_vocab):
        token = by_id.get(idx)
        if token is None:
            tokens.append(f"[PAD{idx}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            tokens.append(token)
            control = token in special
            types.append(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _tensor(name: str, data: np.ndarray, outtype: str) -> tuple[np.ndarray, Any]:
    """The tensor's bytes in the file's type: F32 for 1-D and position tables, else F16/Q8_0."""
    import gguf

    data = data.astype(np.float32)
    if data.ndim == 1 or name.startswith("position_embd"):
        return data, gguf.GGMLQuantizationType.F32
    if outtype == "q8_0":
        block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]
        if data.shape[-1] % block == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
            return gguf.quants.quantize(data, qtype), qtype
    return data.astype(np.float16), gguf.GGMLQuantizationType.F16


def write_gpt2_gguf(model: Any, tokenizer: Any, source: Path, path: Path, outtype: str) -> None:
    """Write ``model`` (a GPT2LMHeadModel) and its tokenizer to ``path``."""
    import gguf

    if outtype not in OUT_TYPES:
        raise ToolchainError(f"GGUF type must be one of {OUT_TYPES}, got {outtype!r}")
    config = model.config
    arch = gguf.MODEL_ARCH.GPT2
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    file_types = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_name(source.name)
    writer.add_block_count(config.n_layer)
    writer.add_context_length(config.n_positions)
    writer.add_embedding_length(config.n_embd)
    writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
    writer.add_head_count(config.n_head)
    writer.add_layer_norm_eps(config.layer_norm_epsilon)
    writer.add_file_type(file_types[outtype])

    tokens, types = _token_types(tokenizer, config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(source, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise ToolchainError(f"{source} has no BPE merges (tokenizer.json / merges.txt)")
    special.add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(arch, config.n_layer)
    for hf_name, tensor in model.state_dict().items():
        if hf_name.endswith(_SKIP):
            continue
        data = tensor.detach().cpu().float().numpy()
        if hf_name.endswith(_CONV1D):
            data = data.T
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ToolchainError(f"no GGUF name for GPT-2 tensor {hf_name!r}")
        array, qtype = _tensor(name, data, outtype)
        writer.add_tensor(name, array, raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
