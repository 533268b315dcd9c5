"""Reference log-likelihoods for @edkm/eval's tests, computed with PyTorch + transformers.

Re-implements, in Python, lm-evaluation-harness v0.4's zero-shot formatting of the fixture tasks
(the task YAMLs' doc_to_text / doc_to_choice / doc_to_target) and its HF model's loglikelihood
(`_encode_pair` with the tokenizer's default special tokens, left truncation to max_length + 1,
sum of the continuation's log-softmax), one request at a time in float32 on the CPU, and the
sliding-window perplexity of Hugging Face's recipe. Writes test/fixtures/reference-lls.json
(or $OUT/reference-lls.json when OUT is set).

Usage (repo root, with torch and transformers): python3 packages/eval/scripts/reference.py
"""

import json
import math
import os
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL = "models/edkm-tiny"
FIX = "packages/eval/test/fixtures"
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(MODEL)
model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
MAX_LENGTH = model.config.max_position_embeddings
BOS = tok.bos_token_id


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def hs_pre(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def mc(context, choices, gold, delim=" "):
    return {"requests": [[context, delim + c] for c in choices], "gold": gold, "choice_lengths": [len(c) for c in choices]}


def piqa(r, label):
    return mc(f"Question: {r['goal']}\nAnswer:", [r["sol1"], r["sol2"]], label)


def winogrande(r):
    i = r["sentence"].index("_")
    ctxs = [r["sentence"][:i] + o for o in (r["option1"], r["option2"])]
    target = r["sentence"][i + 1 :].strip()
    return {"requests": [[c, " " + target] for c in ctxs], "gold": int(r["answer"]) - 1, "choice_lengths": [len(c) for c in ctxs]}


def arc(r):
    q = r["question"]
    if isinstance(q, dict):
        question, texts, labels = q["stem"], [c["text"] for c in q["choices"]], [c["label"] for c in q["choices"]]
    else:
        question, texts, labels = q, r["choices"]["text"], r["choices"]["label"]
    return mc(f"Question: {question}\nAnswer:", texts, labels.index(r["answerKey"]))


def hellaswag(r):
    ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
    return mc(hs_pre(r["activity_label"] + ": " + ctx), [hs_pre(e) for e in r["endings"]], int(r["label"]))


def boolq(r):
    gold = int(r["answer"]) if "answer" in r else int(r["label"])
    return mc(f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:", ["no", "yes"], gold)


def generic(r):
    return mc(r["context"], r["choices"], r["gold"], r.get("target_delimiter", " "))


def encode_pair(context, continuation):
    if context == "":
        cont = tok.encode(continuation, add_special_tokens=False)
        return ([BOS], cont) if BOS != cont[0] else (cont[:1], cont[1:])
    n = len(context) - len(context.rstrip())
    if n > 0:
        continuation = context[-n:] + continuation
        context = context[:-n]
    whole = tok.encode(context + continuation)
    ctx = tok.encode(context)
    return ctx, whole[len(ctx) :]


@torch.no_grad()
def loglikelihood(context, continuation, max_length=MAX_LENGTH):
    ctx, cont = encode_pair(context, continuation)
    inp = (ctx + cont)[-(max_length + 1) :][:-1]
    logp = torch.log_softmax(model(torch.tensor([inp])).logits[0].float(), dim=-1)[-len(cont) :]
    toks = torch.tensor(cont)
    return {
        "tokens": (ctx + cont)[-(max_length + 1) :],
        "cont_len": len(cont),
        "ll": logp.gather(1, toks[:, None]).sum().item(),
        "is_greedy": bool((logp.argmax(-1) == toks).all().item()),
    }


def score(docs, max_length=MAX_LENGTH):
    for d in docs:
        d["results"] = [loglikelihood(c, x, max_length) for c, x in d["requests"]]
        lls = [r["ll"] for r in d["results"]]
        d["pred"] = max(range(len(lls)), key=lambda i: (lls[i], -i))
        norm = [ll / n for ll, n in zip(lls, d["choice_lengths"])]
        d["pred_norm"] = max(range(len(norm)), key=lambda i: (norm[i], -i))
    return docs


@torch.no_grad()
def perplexity(text, window, stride):
    ids = tok(text, return_tensors="pt").input_ids
    n = ids.size(1)
    nll_exact, scored, nll_hf, n_hf, prev_end = 0.0, 0, 0.0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        trg_len = end - prev_end
        inp = ids[:, begin:end]
        target = inp.clone()
        target[:, :-trg_len] = -100
        out = model(inp, labels=target)
        logp = torch.log_softmax(out.logits[0].float(), dim=-1)
        for j in range(1, end - begin):
            if target[0, j] != -100:
                nll_exact -= logp[j - 1, target[0, j]].item()
                scored += 1
        valid = (target != -100).sum().item() - 1  # the docs' num_loss_tokens
        if valid > 0:
            nll_hf += out.loss.item() * valid
            n_hf += valid
        prev_end = end
        if end == n:
            break
    return {"window": window, "stride": stride, "tokens": n, "scored": scored, "nll": nll_exact / scored, "hf_recipe_nll": nll_hf / n_hf}


labels = [int(x) for x in open(f"{FIX}/piqa/valid-labels.lst").read().split()]
out = {
    "model": MODEL,
    "max_length": MAX_LENGTH,
    "torch": torch.__version__,
    "tasks": {
        "piqa": score([piqa(r, l) for r, l in zip(rows(f"{FIX}/piqa/valid.jsonl"), labels)]),
        "piqa-hf": score([piqa(r, r["label"]) for r in rows(f"{FIX}/piqa/piqa-hf.jsonl")]),
        "winogrande": score([winogrande(r) for r in rows(f"{FIX}/winogrande/dev.jsonl")]),
        "arc_challenge": score([arc(r) for r in rows(f"{FIX}/arc/ARC-Challenge-Dev.jsonl")]),
        "arc_easy": score([arc(r) for r in rows(f"{FIX}/arc/arc-easy-hf.jsonl")]),
        "hellaswag": score([hellaswag(r) for r in rows(f"{FIX}/hellaswag/hellaswag_val.jsonl")]),
        "boolq": score([boolq(r) for r in rows(f"{FIX}/boolq/dev.jsonl")]),
        "boolq-sg": score([boolq(r) for r in rows(f"{FIX}/boolq/super_glue-val.jsonl")]),
        "boolq-max64": score([boolq(r) for r in rows(f"{FIX}/boolq/dev.jsonl")], max_length=64),
        "shakespeare-next-line": score([generic(r) for r in rows("data/eval/shakespeare-next-line.jsonl")[:12]]),
        "alpaca-mc": score([generic(r) for r in rows("data/eval/alpaca-mc.jsonl")[:6]]),
    },
    "raw": [
        {"context": c, "continuation": x, **loglikelihood(c, x)}
        for c, x in [("", "ROMEO:"), ("", " yes"), ("Answer: ", "yes"), ("ROMEO:\n", "But soft!"), ("  ", "a")]
    ],
}
val = open("data/eval/shakespeare-val.txt", encoding="utf-8").read()
out["ppl"] = [perplexity(val[:3000], w, s) for w, s in [(256, 128), (256, 256), (100, 37), (1024, 512)]]
dest = os.path.join(os.environ.get("OUT") or FIX, "reference-lls.json")
with open(dest, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False)
print(dest, json.dumps(out["ppl"]), sum(len(d["requests"]) for t in out["tasks"].values() for d in t), "requests")
print("raw", [(r["context"], r["continuation"], r["tokens"], r["cont_len"], round(r["ll"], 4)) for r in out["raw"]])
