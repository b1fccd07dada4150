#!/usr/bin/python3
"""Training objectives of webtune, written from their papers' definitions on top of webtune_reference.py's
model (CausalLM, PEFT LoRA, the deterministic LoRA init of lora-grad), in float64:

  MODEL --objective sft|dpo|orpo --data FILE [--beta B] [--rank 4] [--alpha 8] [--targets q_proj,v_proj]
        [--rslora] --out FILE

FILE is JSON: a list of examples, each {"prompt": ids, "completion": ids} for sft or
{"prompt": ids, "chosen": ids, "rejected": ids} for dpo and orpo (ids are token ids; the prompt's include BOS).
Every sequence is the prompt followed by one answer, scored alone (no batching, no padding), and
  log π(y|x) = Σ_t log p(y_t | x, y_<t)        over the answer's tokens y_1..y_m (the prompt is not scored)
  ȳ = log π(y|x) / m                           the mean per-token log-probability
with π the model with LoRA (the deterministic init) on every layer's --targets and π_ref the model alone.

  sft   loss = Σ over all answers of −log π(y|x) / Σ of their lengths (the mean token cross-entropy).
  dpo   Rafailov et al. 2023, "Direct Preference Optimization", eq. 7, β = --beta (default 0.1):
          loss = mean over pairs of −log σ(β log[π(y⁺|x)/π_ref(y⁺|x)] − β log[π(y⁻|x)/π_ref(y⁻|x)])
        rewards/chosen = β log[π(y⁺|x)/π_ref(y⁺|x)], rewards/rejected likewise for y⁻.
  orpo  Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model", eqs. 2-7,
        λ = --beta (default 0.1):  odds(y|x) = P/(1 − P) with P = exp(ȳ) (the length-normalised likelihood),
          L_SFT = −ȳ⁺,   L_OR = −log σ(log odds(y⁺|x) − log odds(y⁻|x)),   loss = mean over pairs of L_SFT + λ L_OR
        rewards/chosen = λ ȳ⁺ and rewards/rejected = λ ȳ⁻ (as TRL's ORPOTrainer reports them); nll_loss is the mean
        L_SFT, log_odds_ratio the mean log σ(...) and log_odds_chosen the mean log-odds difference.
  dpo and orpo also report rewards/margins (mean chosen − rejected reward) and rewards/accuracies (the share of
  pairs whose chosen reward is higher), as TRL names them.

It writes {"objective", "beta", "rank", "alpha", "targets", "loss", "metrics", "logps", "reference_logps",
"grads"} to --out (logps: {"chosen", "rejected"} or {"completion"} under π, reference_logps the same under π_ref;
grads: every lora_A / lora_B gradient of the loss, PEFT names) and prints a summary.
"""
import argparse
import json
import sys

import torch

from webtune_reference import (CausalLM, InputError, Lora, PEFT_PREFIX, TARGET_MODULES, det_lora,
                               lora_scale)


def sequence_logprob(model, prompt, answer):
    """log π(answer | prompt): the sum of the answer tokens' log-probabilities, and the answer's length."""
    if not prompt or not answer:
        raise InputError("Every prompt and every answer needs at least one token.")
    ids = list(prompt) + list(answer)
    logprobs = torch.log_softmax(model.logits(ids[:-1]), dim=-1)
    positions = torch.arange(len(prompt) - 1, len(ids) - 1)
    return logprobs[positions, torch.tensor(answer)].sum(), len(answer)


def attach_det_lora(model, rank, alpha, targets, rslora):
    scale = lora_scale(alpha, rank, rslora)
    for layer in range(model.config.num_layers):
        for index, target in enumerate(targets):
            module = f"model.layers.{layer}.{TARGET_MODULES[target]}"
            out_features, in_features = model.weight(module + ".weight").shape
            A, B = det_lora(layer, index, out_features, in_features, rank)
            model.lora[module] = Lora(A.requires_grad_(), B.requires_grad_(), scale)


def log_odds(mean_logprob):
    """log(P / (1 − P)) for P = exp(mean_logprob) < 1, with log(1 − P) = log(−expm1(log P))."""
    return mean_logprob - torch.log(-torch.expm1(mean_logprob))


def reward_metrics(chosen, rejected):
    return {
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/margins": (chosen - rejected).mean().item(),
        "rewards/accuracies": (chosen > rejected).double().mean().item(),
    }


def run(model, objective, data, beta):
    if objective == "sft":
        scored = [sequence_logprob(model, e["prompt"], e["completion"]) for e in data]
        total = torch.stack([lp for lp, _ in scored]).sum()
        loss = -total / sum(m for _, m in scored)
        return loss, {}, {"completion": [lp.item() for lp, _ in scored]}, None
    chosen = [sequence_logprob(model, e["prompt"], e["chosen"]) for e in data]
    rejected = [sequence_logprob(model, e["prompt"], e["rejected"]) for e in data]
    chosen_lp = torch.stack([lp for lp, _ in chosen])
    rejected_lp = torch.stack([lp for lp, _ in rejected])
    logps = {"chosen": chosen_lp.tolist(), "rejected": rejected_lp.tolist()}
    if objective == "dpo":
        saved = model.lora
        model.lora = {}
        with torch.no_grad():
            ref_chosen = torch.stack([sequence_logprob(model, e["prompt"], e["chosen"])[0] for e in data])
            ref_rejected = torch.stack([sequence_logprob(model, e["prompt"], e["rejected"])[0] for e in data])
        model.lora = saved
        chosen_reward = beta * (chosen_lp - ref_chosen)
        rejected_reward = beta * (rejected_lp - ref_rejected)
        loss = -torch.nn.functional.logsigmoid(chosen_reward - rejected_reward).mean()
        metrics = reward_metrics(chosen_reward.detach(), rejected_reward.detach())
        return loss, metrics, logps, {"chosen": ref_chosen.tolist(), "rejected": ref_rejected.tolist()}
    chosen_mean = chosen_lp / torch.tensor([m for _, m in chosen], dtype=chosen_lp.dtype)
    rejected_mean = rejected_lp / torch.tensor([m for _, m in rejected], dtype=rejected_lp.dtype)
    difference = log_odds(chosen_mean) - log_odds(rejected_mean)
    ratio = torch.nn.functional.logsigmoid(difference)
    sft = -chosen_mean
    loss = (sft - beta * ratio).mean()
    metrics = reward_metrics(beta * chosen_mean.detach(), beta * rejected_mean.detach())
    metrics.update(nll_loss=sft.mean().item(), log_odds_ratio=ratio.mean().item(),
                   log_odds_chosen=difference.mean().item())
    return loss, metrics, logps, None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="objectives_reference.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", metavar="MODEL")
    parser.add_argument("--objective", required=True, choices=["sft", "dpo", "orpo"])
    parser.add_argument("--data", required=True, metavar="FILE")
    parser.add_argument("--beta", type=float, default=0.1, help="DPO's β or ORPO's λ (default 0.1)")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--targets", default="q_proj,v_proj")
    parser.add_argument("--rslora", action="store_true")
    parser.add_argument("--out", required=True, metavar="FILE")
    a = parser.parse_args(argv)
    targets = a.targets.split(",")
    unknown = [t for t in targets if t not in TARGET_MODULES]
    if unknown:
        raise InputError(f"Unknown --targets {unknown}; choose from {', '.join(TARGET_MODULES)}.")
    with open(a.data) as f:
        data = json.load(f)
    model = CausalLM(a.model_dir, torch.float64)
    attach_det_lora(model, a.rank, a.alpha, targets, a.rslora)
    loss, metrics, logps, reference_logps = run(model, a.objective, data, a.beta)
    loss.backward()
    grads = {}
    for module, lora in model.lora.items():
        grads[f"{PEFT_PREFIX}{module}.lora_A.weight"] = lora.A.grad.tolist()
        grads[f"{PEFT_PREFIX}{module}.lora_B.weight"] = lora.B.grad.tolist()
    result = {"objective": a.objective, "beta": a.beta, "rank": a.rank, "alpha": a.alpha, "targets": targets,
              "loss": loss.item(), "metrics": metrics, "logps": logps, "reference_logps": reference_logps,
              "grads": grads}
    with open(a.out, "w") as f:
        json.dump(result, f)
    print(json.dumps({"loss": loss.item(), "metrics": metrics, "tensors": len(grads), "out": a.out}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (InputError, OSError, KeyError, json.JSONDecodeError) as error:
        print(f"objectives_reference.py: {error}", file=sys.stderr)
        sys.exit(2)
