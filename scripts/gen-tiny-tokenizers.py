#!/usr/bin/env python3
"""Word-level tokenizers for the tiny test backbones (which ship without one).

    .venv-ref/bin/python scripts/gen-tiny-tokenizers.py

Writes tests/fixtures/tiny-tokenizers/
  llama/  tokenizer.json + tokenizer_config.json for tiny-llama (vocab 256): <pad>=0,
          <s>=1 (BOS, added to plain text), </s>=2 (EOS), <unk>=3, chat markers
          <|system|> <|user|> <|assistant|> as special tokens, then words; a chat
          template `<|role|> content </s>` per message.
  bert/   tokenizer.json + tokenizer_config.json for tiny-bert (vocab 128): [PAD]=0,
          [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, then words; lower-cased WordPiece with
          BERT's pair template (token types 0/1).
The words of `bert` are the first words of `llama`, so one text works for both. Tests
copy a fixture's config and weights beside these files to get a model folder.
"""

import json
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-tokenizers"

WORDS = """the a of and to in is it that was he for on are as with his they at be this from
have or by one had not but what all were when we there can an your which their said if do
will each about how up out them then she many some so these would other into has more her
two like him see time could no make than first been its who now people my made over did
down only way find use may water long little very after words called just where most know
get through back much before go good new write our used me man too any day same right look
think also around another came come work three word must because does part even place well
such here take why things help put years different away again off went old number great
tell men say small every found still between name should home big give air line set own
under read last never us left end along while might next sound below saw something thought
both few those always looked show large often together asked house world going want school
important until form food keep children feet land side without boy once animals life enough
took sometimes four head above kind began almost live page got earth need far hand high year
mother light parts country father let night following picture being study second eyes soon
times story boys since white days paper hard near sentence better best across during today
others however sure means knew""".split()

CHAT = "{% for message in messages %}{{ '<|' + message['role'] + '|> ' + message['content'] + ' </s>' }}{% if not loop.last %}{{ ' ' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ ' <|assistant|>' }}{% endif %}"


def llama():
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    words = WORDS[: 256 - len(specials)]
    vocab = {t: i for i, t in enumerate(specials + words)}
    assert len(vocab) == 256, len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##")
    out = OUT / "llama"
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "model_max_length": 512,
        "chat_template": CHAT,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1) + "\n")


def bert():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = WORDS[: 128 - len(specials)]
    vocab = {t: i for i, t in enumerate(specials + words)}
    assert len(vocab) == 128, len(vocab)
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    out = OUT / "bert"
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "model_max_length": 64,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=1) + "\n")


if __name__ == "__main__":
    llama()
    bert()
    print(f"wrote {OUT}")
