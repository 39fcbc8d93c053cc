#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into tests/fuzz/corpus/<target>/ (a few small files each).

Dataset targets (fuzz_tsv, fuzz_csv, fuzz_jsonl): the first byte selects reader options (see
tests/fuzz/dataset_fuzz_common.h): ' ' defaults, '!' 3 labels, '"' missing labels allowed, '$' pairs with
column sentence2, '(' text column "text"; bits combine ('#' = 3 labels + missing allowed).
Usage: tools/make_fuzz_corpus.py   (from anywhere; standard library only)
"""
import json
import pathlib
import struct

CORPUS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fuzz" / "corpus"


def write(relative, data):
    path = CORPUS / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def safetensors(tensors, metadata=None):
    """u64 little-endian header size, JSON header padded with spaces to 8 bytes, then the data."""
    header = {} if metadata is None else {"__metadata__": metadata}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    write("fuzz_tsv/glue.tsv",
          " sentence\tlabel\nhide new secretions from the parental units\t0\nit 's a charming \" film .\t1\n")
    write("fuzz_tsv/crlf_three_labels.tsv", "!label\tsentence\r\n2\tcaf\u00e9 \u20ac\r\n0\tok\r\n\r\n")
    write("fuzz_tsv/test_split.tsv", '"index\tsentence\tlabel\n0\tno label here\t\n1\tlabelled\t1\n')
    write("fuzz_tsv/pairs.tsv", "$sentence\tsentence2\tlabel\nthe cat sat\ton the mat\t1\n")
    write("fuzz_tsv/bad_fields.tsv", " sentence\tlabel\nno tab here\n\nx\t1.0\n")

    write("fuzz_csv/quoted.csv", ' label,sentence\r\n1,"a, b and ""c"""\r\n0,"two\nlines"\r\n1,plain\r\n')
    write("fuzz_csv/pairs.csv", '$"sentence","sentence2","label"\n"the cat",sat,0\n"",x,1')
    write("fuzz_csv/text_column_bom.csv", '(\ufefftext,label,extra\nhello,1,"x"\n\n')
    write("fuzz_csv/unterminated.csv", ' sentence,label\nok,1\n"never closed,0\n')
    write("fuzz_csv/missing_labels.csv", '#sentence\n"only text"\n')

    write("fuzz_jsonl/basic.jsonl",
          ' {"sentence": "a \\"quoted\\" \\u00e9", "label": 1}\n\n{"label": "0", "sentence": "second"}\r\n')
    write("fuzz_jsonl/pairs.jsonl",
          "'" + '{"sentence": "p", "sentence2": "h", "label": 2}\n{"sentence": "q", "sentence2": "", "label": null}\n')
    write("fuzz_jsonl/text_field.jsonl", '({"text": "x", "label": 0, "nested": {"a": [1, 2.5, true, null]}}\n')
    write("fuzz_jsonl/bad.jsonl", ' {"sentence": "a", "label": 1.0}\n[1]\n{"sentence": 5}\n')

    write("fuzz_tokenizer/ascii.txt", "it 's a charming and often affecting journey . hello,world!")
    write("fuzz_tokenizer/accents.txt", "Caf\u00e9 na\u00efve R\u00e9sum\u00c9 \u00c5ngstr\u00f6m")
    write("fuzz_tokenizer/cjk_emoji.txt", "\u4f60\u597d\u4e16\u754c \U0001F600 \u0627\u0644\u0633\u0644\u0627\u0645 x\u0301")
    write("fuzz_tokenizer/controls.txt", b"tab\there\r\nzero\x00width\xe2\x80\x8b space\xc2\xa0nbsp")
    write("fuzz_tokenizer/long_word.txt", "a" * 150 + " unbelievably supercalifragilistic")

    write("fuzz_safetensors/f32.safetensors",
          safetensors({"w": ("F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3))}, {"format": "pt"}))
    write("fuzz_safetensors/mixed.safetensors",
          safetensors({"a.bias": ("F16", [3], struct.pack("<3e", 1, 2, 3)),
                       "b": ("BF16", [1, 2], b"\x80\x3f\x00\x40"),
                       "ids": ("I64", [2], struct.pack("<2q", 7, -1))}))
    write("fuzz_safetensors/empty_tensor.safetensors",
          safetensors({"e": ("F32", [0, 4], b""), "i": ("I32", [1], struct.pack("<i", 5))}))
    write("fuzz_safetensors/no_tensors.safetensors", safetensors({}, {"note": "empty"}))


if __name__ == "__main__":
    main()
