#!/usr/bin/env python3
"""The GPU check's Python half (scripts/gpu-check.sh runs it; standard library only, PyTorch optional).

  python3 scripts/gpu-check.py torch MANIFEST OUT.json   time a plain PyTorch router (routing, order,
                                                         restore) and torch.matmul on the manifest's shapes
  python3 scripts/gpu-check.py table OUTDIR              print the check's one table from OUTDIR's JSON files
                                                         (info.json, host/suite.json, gpu/suite.json, torch.json)

The PyTorch router is the straightforward implementation of the same router as our kernels
(softmax top-k, renormalized weights, capacity C per expert in choice-major token order, overflow
dropped, tokens ordered into an [E*C, M] buffer and restored weighted by the gate): what a model
written directly in PyTorch runs. Both sides start from the logits and run eagerly.
"""
import json
import os
import sys
import time


def torch_bench(manifest_path, out_path):
    result = {"ok": False}
    try:
        import torch  # noqa: F401
    except Exception as e:  # no PyTorch: the rows say so
        result["error"] = f"PyTorch unavailable: {e}"
        json.dump(result, open(out_path, "w"))
        return 0
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        result["error"] = "PyTorch sees no CUDA device"
        json.dump(result, open(out_path, "w"))
        return 0
    manifest = json.load(open(manifest_path))
    dev = torch.device("cuda")
    result.update({"ok": True, "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "router": [], "gemm": []})

    def timed(fn, iters):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            fn()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) * 1000.0 / iters  # us

    for s in manifest.get("router", []):
        T, M, E, k, cf = s["tokens"], s["hidden"], s["experts"], s["topK"], s["capacityFactor"]
        C = max(1, int(-(-cf * T * k // E)))
        g = torch.Generator(device=dev).manual_seed(7)
        logits = torch.rand(T, E, device=dev, generator=g) * 4 - 2
        x = torch.rand(T, M, device=dev, generator=g) * 2 - 1
        tok = torch.arange(T, device=dev).unsqueeze(1).expand(T, k)

        def router():
            probs = torch.softmax(logits, dim=-1)
            w, idx = torch.topk(probs, k, dim=-1)
            w = w / w.sum(dim=-1, keepdim=True)
            onehot = F.one_hot(idx.t().reshape(-1), E)  # choice-major: first choices of every token first
            pos = torch.cumsum(onehot, dim=0) - 1
            slot = (pos * onehot).sum(dim=-1).view(k, T).t()
            keep = slot < C
            rows = idx * C + slot
            buf = x.new_zeros(E * C, M)
            buf[rows[keep]] = x[tok[keep]]  # order
            gathered = buf[rows.clamp(max=E * C - 1)]  # restore
            return (gathered * (w * keep).unsqueeze(-1)).sum(dim=1)

        us = timed(router, 50)
        result["router"].append({"tokens": T, "hidden": M, "experts": E, "topK": k, "capacity": C, "torchUs": us})

    torch.backends.cuda.matmul.allow_tf32 = False
    for s in manifest.get("gemm", []):
        m, n, kk, b = s["m"], s["n"], s["k"], s.get("batch", 1)
        dt = torch.bfloat16 if s.get("dtype", "bf16") == "bf16" else torch.float32
        A = torch.rand(b, m, kk, device=dev).to(dt)
        B = torch.rand(b, kk, n, device=dev).to(dt)
        us = timed(lambda: torch.matmul(A, B), 20)
        result["gemm"].append({"m": m, "n": n, "k": kk, "batch": b, "dtype": s.get("dtype", "bf16"), "torchUs": us, "torchTflops": 2.0 * m * n * kk * b / (us * 1e-6) / 1e12})
    json.dump(result, open(out_path, "w"), indent=1)
    return 0


def load(path):
    try:
        return json.load(open(path))
    except Exception:
        return None


def table(outdir):
    info = load(os.path.join(outdir, "info.json")) or {}
    host = load(os.path.join(outdir, "host", "suite.json"))
    gpu = load(os.path.join(outdir, "gpu", "suite.json"))
    tch = load(os.path.join(outdir, "torch.json")) or {}
    rows = []  # (check, result, target, status)

    def add(check, res, target, status):
        rows.append((check, res, target, status))

    if info.get("device"):
        head = f"{info.get('deviceName')} (sm_{info.get('computeCapability')}, {info.get('smCount')} SMs), cuBLAS: {'yes' if info.get('cublas') else 'no'}, NCCL: {info.get('ncclVersion') if info.get('nccl') else 'no'}"
    else:
        head = info.get("deviceError") or "no device information (the build or fsmoe-replay info failed; see gpu-check.log)"
    # Host self-check of the prepared data.
    if host:
        n = len(host.get("cases", []))
        bad = [c["name"] for c in host.get("cases", []) if not c.get("ok") and not c.get("skipped")]
        add("prepared plans vs host backend", f"{n - len(bad)}/{n} cases match their references", "all", "PASS" if not bad else "FAIL")
    else:
        add("prepared plans vs host backend", "not run", "all", "FAIL")
    unavailable = not gpu or gpu.get("unavailable")
    if unavailable:
        why = (gpu or {}).get("error") or info.get("deviceError") or "the GPU suite did not run"
        add("cuda backend", why, "a CUDA device", "SKIP")
    else:
        for c in gpu.get("cases", []):
            cmp = c.get("comparison") or {}
            name = f"cuda vs host: {c['name']} ({c.get('precision')}, {c.get('world')} rank{'s' if c.get('world', 1) > 1 else ''})"
            if c.get("skipped"):
                add(name, c["skipped"][:60], "", "SKIP")
            elif c.get("error"):
                add(name, c["error"][:60], "", "FAIL")
            else:
                res = f"max rel {cmp.get('maxRelError', float('nan')):.2e}, loss {cmp.get('lossRelError', float('nan')):.1e}, routing {cmp.get('routingMismatches')}/{cmp.get('decisions')}"
                add(name, res, f"<= {cmp.get('tolerance'):.0e}", "PASS" if c.get("ok") else "FAIL")
        # Eager vs graph: a one-rank and a four-rank case, and the biggest sweep plan.
        timed = [c for c in gpu.get("cases", []) if c.get("timing", {}).get("graphUs") and c.get("precision") == "fp32" and c.get("comm") == "auto"]
        picks = [c for c in timed if c.get("world") == 1][:1] + [c for c in timed if c.get("world", 1) > 1][:1]
        sweep = [s for s in gpu.get("sweep", []) if s.get("measuredUs")]
        pairs = [(c["name"], c["timing"]["eagerUs"], c["timing"]["graphUs"]) for c in picks]
        if sweep:
            big = max(sweep, key=lambda s: s["measuredUs"])
            if big.get("eagerUs"):
                pairs.append((big["name"], big["eagerUs"], big["measuredUs"]))
        for name, eager, graph in pairs:
            add(f"iteration eager vs graph: {name}", f"eager {eager:.0f} us, graph {graph:.0f} us ({eager / graph:.2f}x)", "graph faster", "PASS" if graph <= eager else "INFO")
        # Router against PyTorch.
        trs = tch.get("router", [])
        for i, r in enumerate(gpu.get("router", [])):
            if "error" in r:
                add("router+order+restore", r["error"][:60], ">= 1.4x", "FAIL")
                continue
            shape = f"T={r['tokens']} M={r['hidden']} E={r['experts']} k={r['topK']}"
            t = trs[i] if i < len(trs) else None
            if t:
                ratio = t["torchUs"] / r["totalUs"]
                add(f"router+order+restore {shape}", f"ours {r['totalUs']:.0f} us vs PyTorch {t['torchUs']:.0f} us = {ratio:.2f}x", ">= 1.4x", "PASS" if ratio >= 1.4 else "FAIL")
            else:
                add(f"router+order+restore {shape}", f"ours {r['totalUs']:.0f} us ({tch.get('error', 'no PyTorch timing')})", ">= 1.4x", "SKIP")
        tgs = tch.get("gemm", [])
        for i, g in enumerate(gpu.get("gemm", [])):
            if "error" in g:
                add("expert GEMM", g["error"][:60], "", "FAIL")
                continue
            shape = f"{g['dtype']} {g['m']}x{g['n']}x{g['k']}" + (f" x{g['batch']}" if g["batch"] > 1 else "")
            peak = g.get("peakTflops") or 0
            frac = f" = {100 * g['tflops'] / peak:.0f}% of {peak:.0f} peak" if peak else ""
            t = tgs[i] if i < len(tgs) else None
            extra = f", torch.matmul {t['torchTflops']:.0f}" if t else ""
            add(f"expert GEMM {shape} ({g['engine'].split(' ')[0]})", f"{g['tflops']:.0f} TFLOP/s{frac}{extra}", "near peak", "INFO")
        prof = gpu.get("profile")
        if prof and sweep:
            worst = prof["maxAbsRelError"]
            add(f"profile fit: predicted vs measured ({len(sweep)} plans)", f"mean |err| {100 * prof['meanAbsRelError']:.1f}%, max {100 * worst:.1f}%", "<= 10%", "PASS" if worst <= 0.10 else "FAIL")
            big = max(sweep, key=lambda s: s["measuredUs"])
            add(f"  largest: {big['name']}", f"measured {big['measuredUs']:.0f} us, predicted {big['predictedUs']:.0f} us", "", "INFO")
        elif not sweep:
            add("profile fit", "no sweep plan ran", "<= 10%", "FAIL")
    w0 = max(len(r[0]) for r in rows) if rows else 10
    w1 = max(len(r[1]) for r in rows) if rows else 10
    w2 = max(len(r[2]) for r in rows) if rows else 6
    print()
    print(f"fsmoe GPU check: {head}")
    print(f"{'check'.ljust(w0)}  {'result'.ljust(w1)}  {'target'.ljust(w2)}  status")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * w2}  ------")
    for r in rows:
        print(f"{r[0].ljust(w0)}  {r[1].ljust(w1)}  {r[2].ljust(w2)}  {r[3]}")
    failed = any(r[3] == "FAIL" for r in rows)
    return 1 if failed else (3 if unavailable else 0)


def main(argv):
    if len(argv) >= 4 and argv[1] == "torch":
        return torch_bench(argv[2], argv[3])
    if len(argv) >= 3 and argv[1] == "table":
        return table(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    started = time.time()
    sys.exit(main(sys.argv))
