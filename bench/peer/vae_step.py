#!/usr/bin/python3
"""PyTorch peer of the C VAE example's training step and evaluation (issue 4).

The same step as examples/vae/train.c, written the way a PyTorch user would:
nn.Linear/nn.Tanh MLPs, batched tensors, autograd for the networks, the SVI
inner loop over the k steps in Python (each step one batched call for every
data point), torch.optim.Adam(amsgrad=True).

  architecture   784-200-200-50 encoder (tanh, tanh, linear -> mean | log-std),
                 50-200-200-784 decoder (tanh, tanh, linear -> Bernoulli logits)
  encoder        log-std clamped to [-12, 8] (clamped entries get no gradient)
  prior          N(0, I); likelihood Bernoulli, log p = sum x l - softplus(l)
  vae            ELBO, one sample, pathwise gradient (autograd through z)
  iwae           IWAE-K, K = k+1 = 10 samples, pathwise (autograd of the LSE)
  svi            k+1 = 10 SVI steps (plain gradient ascent on log w, eta = 5e-3,
                 one sample per step, pathwise direction d/dmean = g,
                 d/dlogstd = g sigma eps + 1), bound log w_k, decoder target z_k
  bsvi           k = 9 steps, bound LSE(log w_i) - log(k+1), targets all z_i with
                 coefficients softmax(log w)
  bsvi-sir       k = 9 steps, one target per data point drawn from softmax(log w)
  encoder grad   (svi, bsvi*) the step-0 direction ("ELBO at lambda_0") / B chained
                 through the encoder
  optimiser      AMSGrad, lr 1e-3, betas (0.9, 0.999), eps 1e-8, ascending the bound
Nothing is differentiated through the SVI steps. Evaluation: IWAE-S with the
samples of each image streamed in chunks of 2000 rows and a running
log-sum-exp; BSVI-K = K-1 SVI steps from the encoder's proposal with a running
log-sum-exp of the K weights (batches of 100 images), as libbsvi's evaluator.

Inputs, initial parameters and the test images come from the files written by
`bench_train_step prep DIR`, so both sides start from the same weights and see
the same binarised images (only the random draws differ).

Usage (always with Debian's interpreter, /usr/bin/python3):
  vae_step.py train DIR [--methods vae,iwae,svi,bsvi,bsvi-sir] [--steps N] [--warmup W]
                        [--dtype float32|float64]
  vae_step.py eval DIR [--images N] [--iwae-images N2] [--iwae-samples S] [--bsvi-weights K]
                       [--reps R]
  vae_step.py mem-train DIR --method M [--k K] [--steps N]
  vae_step.py mem-eval DIR --what iwae|bsvi --samples S [--images N]
  vae_step.py grad DIR --method M [--reps R] --out FILE
Every mode prints one JSON object per line.

Precision: float32 by default (PyTorch's default and what its users train in);
--dtype float64 for the double-precision comparison.

Run settings (issue 9): --threads N is torch.set_num_threads(N) (intra-op OpenMP);
--openblas-threads N sets OPENBLAS_NUM_THREADS and --malloc-heap sets GLIBC_TUNABLES to
MALLOC_HEAP_TUNABLES (glibc keeps freed activations in the heap instead of returning
them to the kernel with munmap/trim, so each step does not page-fault them in again);
both act at load time, so the script re-executes itself once with the environment set
(the same as setting the variables by hand); so does --openblas-coretype NAME
(OPENBLAS_CORETYPE: OpenBLAS 0.3.21 does not know recent Intel CPUs, e.g. family 6 model
207, and falls back to its Prescott (SSE3) kernels, about 3x slower; SkylakeX is the
AVX-512 kernel set). --setting LABEL is copied into the output.
bench/peer/sweep_settings.sh measures every combination; its winner is the peer.
"""
import os
import sys

MALLOC_HEAP_TUNABLES = ("glibc.malloc.mmap_threshold=1073741824:"
                        "glibc.malloc.trim_threshold=1073741824:"
                        "glibc.malloc.top_pad=268435456")


def _apply_load_time_settings(argv):
    """Before torch (and OpenBLAS, glibc's malloc) load: --openblas-threads N,
    --openblas-coretype C and --malloc-heap / --glibc-tunables S become environment
    variables; re-exec if they change."""
    env, i = {}, 0
    while i < len(argv):
        a = argv[i]
        if a == "--openblas-threads" and i + 1 < len(argv):
            env["OPENBLAS_NUM_THREADS"] = argv[i + 1]
        elif a.startswith("--openblas-threads="):
            env["OPENBLAS_NUM_THREADS"] = a.split("=", 1)[1]
        elif a == "--openblas-coretype" and i + 1 < len(argv):
            env["OPENBLAS_CORETYPE"] = argv[i + 1]
        elif a == "--malloc-heap":
            env["GLIBC_TUNABLES"] = MALLOC_HEAP_TUNABLES
        elif a == "--glibc-tunables" and i + 1 < len(argv):
            env["GLIBC_TUNABLES"] = argv[i + 1]
        i += 1
    if any(os.environ.get(k) != v for k, v in env.items()):
        os.environ.update(env)
        os.execv(sys.executable, [sys.executable] + argv)


if __name__ == "__main__":
    _apply_load_time_settings(sys.argv)

import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LOG_STD_MIN, LOG_STD_MAX = -12.0, 8.0
LOG_2PI = math.log(2.0 * math.pi)
EVAL_CHUNK_ROWS = 2000


class VAE(nn.Module):
    def __init__(self, x_dim=784, h_dim=200, z_dim=50):
        super().__init__()
        self.z_dim = z_dim
        self.enc = nn.Sequential(nn.Linear(x_dim, h_dim), nn.Tanh(), nn.Linear(h_dim, h_dim),
                                 nn.Tanh(), nn.Linear(h_dim, 2 * z_dim))
        self.dec = nn.Sequential(nn.Linear(z_dim, h_dim), nn.Tanh(), nn.Linear(h_dim, h_dim),
                                 nn.Tanh(), nn.Linear(h_dim, x_dim))

    def encode(self, x):
        out = self.enc(x)
        return out[:, :self.z_dim], out[:, self.z_dim:].clamp(LOG_STD_MIN, LOG_STD_MAX)

    def log_lik(self, x, z):
        """log p(x | z) for z of shape (..., Z) and x broadcastable to the logits."""
        logits = self.dec(z)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                   reduction="none").sum(-1)

    def log_joint(self, x, z):
        return self.log_lik(x, z) - 0.5 * (z * z).sum(-1) - 0.5 * self.z_dim * LOG_2PI


def log_q(log_std, eps):
    """log q(z; mean, log-std) at z = mean + sigma * eps (eps held fixed)."""
    return -log_std.sum(-1) - 0.5 * (eps * eps).sum(-1) - 0.5 * eps.shape[-1] * LOG_2PI


def load_params(model, path, dtype):
    """The C example's flat parameter array: enc w1 b1 w2 b2 w3 b3, dec w1 b1 w2 b2 w3 b3, log-scale."""
    import array
    a = array.array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    flat = torch.tensor(a, dtype=torch.float64)
    off = 0
    with torch.no_grad():
        for seq in (model.enc, model.dec):
            for layer in (seq[0], seq[2], seq[4]):
                for p in (layer.weight, layer.bias):
                    n = p.numel()
                    p.copy_(flat[off:off + n].view_as(p).to(dtype))
                    off += n
    assert off + 1 == flat.numel(), "parameter file does not match the architecture"


def flat_grads(model):
    parts = []
    for seq in (model.enc, model.dec):
        for layer in (seq[0], seq[2], seq[4]):
            parts += [layer.weight.grad.reshape(-1), layer.bias.grad.reshape(-1)]
    parts.append(torch.zeros(1, dtype=parts[0].dtype))  # the log-scale (unused, Bernoulli)
    return torch.cat(parts).double()


def load_x(path, dtype):
    import array
    a = array.array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return torch.tensor(a, dtype=dtype).view(-1, 784)


class Trainer:
    def __init__(self, model, method, k=9, eta=5e-3):
        self.m, self.method, self.k, self.eta = model, method, k, eta
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                    amsgrad=True)

    def svi(self, x, mean, log_std, steps):
        """SVI-`steps` refinement from (mean, log_std) (detached): the buffer's log w (B, steps+1),
        its latents (B, steps+1, Z) and the step-0 direction (the encoder gradient)."""
        m = self.m
        mu, s = mean.detach(), log_std.detach()
        lws, zs = [], []
        enc_dmu = enc_ds = None
        for i in range(steps + 1):
            eps = torch.randn_like(mu)
            sig = s.exp()
            z = mu + sig * eps
            lq = log_q(s, eps)
            if i < steps:
                z.requires_grad_(True)
                lp = m.log_joint(x, z)
                g, = torch.autograd.grad(lp.sum(), z)
                z = z.detach()
                lp = lp.detach()
                dmu, ds = g, g * sig * eps + 1.0
                if i == 0:
                    enc_dmu, enc_ds = dmu, ds
                mu = mu + self.eta * dmu
                s = s + self.eta * ds
                if not bool(torch.isfinite(mu).all()) or not bool(
                        ((s >= -30.0) & (s <= 30.0)).all()):
                    raise RuntimeError("SVI step %d diverged" % i)
            else:
                with torch.no_grad():
                    lp = m.log_joint(x, z)
            lws.append(lp - lq)
            zs.append(z)
        return torch.stack(lws, 1), torch.stack(zs, 1), enc_dmu, enc_ds

    def step(self, x):
        """One training step; returns the batch-mean bound (before the update)."""
        m, B, k = self.m, x.shape[0], self.k
        self.opt.zero_grad(set_to_none=False)
        mean, log_std = m.encode(x)
        if self.method == "vae":
            eps = torch.randn_like(mean)
            z = mean + log_std.exp() * eps
            bound = m.log_joint(x, z) - log_q(log_std, eps)
            loss = -bound.mean()
        elif self.method == "iwae":
            K = k + 1
            eps = torch.randn(B, K, mean.shape[1], dtype=mean.dtype)
            z = mean.unsqueeze(1) + log_std.exp().unsqueeze(1) * eps
            lw = m.log_joint(x.unsqueeze(1), z) - log_q(log_std.unsqueeze(1), eps)
            bound = torch.logsumexp(lw, 1) - math.log(K)
            loss = -bound.mean()
        else:
            steps = k + 1 if self.method == "svi" else k
            lw, zs, dmu, ds = self.svi(x, mean, log_std, steps)
            K1 = steps + 1
            if self.method == "svi":
                bound = lw[:, -1]
                tz, coef = zs[:, -1], None
            else:
                bound = torch.logsumexp(lw, 1) - math.log(K1)
                r = torch.softmax(lw, 1)
                if self.method == "bsvi":
                    tz, coef = zs, r
                else:  # bsvi-sir, M = 1
                    pick = torch.multinomial(r, 1).squeeze(1)
                    tz, coef = zs[torch.arange(B), pick], None
            xs = x if tz.dim() == 2 else x.unsqueeze(1)
            lp = m.log_lik(xs, tz)
            dec_obj = (lp if coef is None else coef * lp).sum() / B
            enc_obj = ((mean * dmu).sum() + (log_std * ds).sum()) / B
            loss = -(dec_obj + enc_obj)
        loss.backward()
        self.opt.step()
        return float(bound.detach().mean())


@torch.no_grad()
def eval_iwae(m, x, S):
    """IWAE-S per image: samples in chunks of EVAL_CHUNK_ROWS rows, running log-sum-exp."""
    mean, log_std = m.encode(x)
    out = torch.empty(x.shape[0], dtype=x.dtype)
    for b in range(x.shape[0]):
        acc = torch.tensor(-math.inf, dtype=x.dtype)
        mu, ls, sig = mean[b], log_std[b], log_std[b].exp()
        for s0 in range(0, S, EVAL_CHUNK_ROWS):
            n = min(EVAL_CHUNK_ROWS, S - s0)
            eps = torch.randn(n, mu.shape[0], dtype=x.dtype)
            z = mu + sig * eps
            lw = m.log_joint(x[b], z) - log_q(ls, eps)
            acc = torch.logaddexp(acc, torch.logsumexp(lw, 0))
        out[b] = acc - math.log(S)
    return out


def eval_bsvi(trainer, x, K):
    """BSVI-K per image: K-1 SVI steps from the encoder's proposal, running log-sum-exp."""
    m, eta = trainer.m, trainer.eta
    with torch.no_grad():
        mu, s = m.encode(x)
    acc = torch.full((x.shape[0],), -math.inf, dtype=x.dtype)
    for i in range(K):
        eps = torch.randn_like(mu)
        sig = s.exp()
        z = mu + sig * eps
        lq = log_q(s, eps)
        if i < K - 1:
            z.requires_grad_(True)
            lp = m.log_joint(x, z)
            g, = torch.autograd.grad(lp.sum(), z)
            lp = lp.detach()
            mu = mu + eta * g
            s = s + eta * (g * sig * eps + 1.0)
        else:
            with torch.no_grad():
                lp = m.log_joint(x, z)
        acc = torch.logaddexp(acc, lp - lq)
    return acc - math.log(K)


def setup(args, dtype):
    torch.set_num_threads(args.threads)
    if args.flush_denormal:  # subnormal floats cost a microcode assist per operation
        torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    m = VAE().to(dtype)
    load_params(m, os.path.join(args.dir, "params.bin"), dtype)
    return m


def settings_info(args):
    """The run setting, as applied (recorded in every timing line)."""
    return {"torch_threads": torch.get_num_threads(),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "setting": args.setting}


def max_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cmd_train(args):
    dtype = getattr(torch, args.dtype)
    xs = load_x(os.path.join(args.dir, "train_x.bin"), dtype).view(-1, 100, 784)
    for method in args.methods.split(","):
        m = setup(args, dtype)
        tr = Trainer(m, method, k=args.k)
        first = None
        for s in range(args.warmup):
            b = tr.step(xs[s % xs.shape[0]])
            first = b if first is None else first
        times = []
        for s in range(args.steps):
            x = xs[(args.warmup + s) % xs.shape[0]]
            t0 = time.perf_counter()
            b = tr.step(x)
            times.append(1e3 * (time.perf_counter() - t0))
            first = b if first is None else first
        srt = sorted(times)
        med = srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
        print(json.dumps({"kind": "train", "impl": "torch", "dtype": args.dtype, "method": method,
                          "batch": 100, "k": args.k, "steps": args.steps, "warmup": args.warmup,
                          **settings_info(args),
                          "first_bound": first, "last_bound": b,
                          "times_ms": [round(t, 4) for t in times], "median_ms": med}),
              flush=True)


def cmd_eval(args):
    dtype = getattr(torch, args.dtype)
    xall = load_x(os.path.join(args.dir, "test_x.bin"), dtype)
    m = setup(args, dtype)
    tr = Trainer(m, "bsvi")
    for what in ("iwae", "bsvi"):
        if args.what not in ("both", what):
            continue
        xt = xall[:(args.iwae_images or args.images) if what == "iwae" else args.images]
        per, lls = [], None
        for r in range(args.reps):
            t0 = time.perf_counter()
            res = []
            for b0 in range(0, xt.shape[0], 100):
                x = xt[b0:b0 + 100]
                res.append(eval_iwae(m, x, args.iwae_samples) if what == "iwae"
                           else eval_bsvi(tr, x, args.bsvi_weights))
            per.append(1e3 * (time.perf_counter() - t0) / xt.shape[0])
            if lls is None:
                lls = torch.cat(res)
        srt = sorted(per)
        med = srt[len(srt) // 2] if len(srt) % 2 else 0.5 * (srt[len(srt) // 2 - 1] + srt[len(srt) // 2])
        n = args.iwae_samples if what == "iwae" else args.bsvi_weights
        print(json.dumps({"kind": "eval", "impl": "torch", "dtype": args.dtype,
                          "what": "%s-%d" % (what, n), "images": xt.shape[0], "reps": args.reps,
                          **settings_info(args),
                          "mean_ll": float(lls.mean()),
                          "ms_per_image": [round(t, 4) for t in per],
                          "median_ms_per_image": med}), flush=True)


def cmd_mem_train(args):
    dtype = getattr(torch, args.dtype)
    xs = load_x(os.path.join(args.dir, "train_x.bin"), dtype).view(-1, 100, 784)
    m = setup(args, dtype)
    rss0 = max_rss_kb()
    tr = Trainer(m, args.method, k=args.k)
    for s in range(args.steps):
        tr.step(xs[s % xs.shape[0]])
    print(json.dumps({"kind": "mem", "impl": "torch", "mode": "train", "method": args.method,
                      "k": args.k, "steps": args.steps, "rss_before_kb": rss0,
                      "max_rss_kb": max_rss_kb()}), flush=True)


def cmd_mem_eval(args):
    dtype = getattr(torch, args.dtype)
    xt = load_x(os.path.join(args.dir, "test_x.bin"), dtype)
    m = setup(args, dtype)
    rss0 = max_rss_kb()
    tr = Trainer(m, "bsvi")
    xt = xt[:args.images]
    for b0 in range(0, xt.shape[0], 100):
        x = xt[b0:b0 + 100]
        if args.what == "iwae":
            eval_iwae(m, x, args.samples)
        else:
            eval_bsvi(tr, x, args.samples)
    print(json.dumps({"kind": "mem", "impl": "torch", "mode": "eval", "what": args.what,
                      "samples": args.samples, "images": xt.shape[0], "rss_before_kb": rss0,
                      "max_rss_kb": max_rss_kb()}), flush=True)


def cmd_grad(args):
    """Mean over R steps from the same parameters of the step's gradient of the bound."""
    dtype = getattr(torch, args.dtype)
    x = load_x(os.path.join(args.dir, "train_x.bin"), dtype)[:100]
    m = setup(args, dtype)
    tr = Trainer(m, args.method, k=args.k)
    tr.opt = torch.optim.SGD(m.parameters(), lr=0.0)  # gradients only, no update
    acc, bsum = None, 0.0
    for _ in range(args.reps):
        bsum += tr.step(x)
        g = -flat_grads(m)  # the step minimises -bound; the C side stores d(bound)/dtheta
        acc = g / args.reps if acc is None else acc + g / args.reps
    import array
    with open(args.out, "wb") as f:
        f.write(array.array("d", acc.tolist()).tobytes())
    print(json.dumps({"kind": "grad", "impl": "torch", "method": args.method, "reps": args.reps,
                      "mean_bound": bsum / args.reps}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["train", "eval", "mem-train", "mem-eval", "grad"])
    p.add_argument("dir")
    p.add_argument("--methods", default="vae,iwae,svi,bsvi,bsvi-sir")
    p.add_argument("--method", default="bsvi-sir")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--k", type=int, default=9)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--iwae-images", type=int, default=0)
    p.add_argument("--iwae-samples", type=int, default=5000)
    p.add_argument("--bsvi-weights", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--what", default="both")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--out", default="grad_torch.bin")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--openblas-threads", help="OPENBLAS_NUM_THREADS (applied by a re-exec)")
    p.add_argument("--openblas-coretype",
                   help="OPENBLAS_CORETYPE, e.g. SkylakeX where OpenBLAS does not know the CPU "
                        "(applied by a re-exec)")
    p.add_argument("--malloc-heap", action="store_true",
                   help="GLIBC_TUNABLES=" + MALLOC_HEAP_TUNABLES + " (applied by a re-exec)")
    p.add_argument("--glibc-tunables", help="GLIBC_TUNABLES (applied by a re-exec)")
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True): subnormals read and written as zero")
    p.add_argument("--setting", default="", help="a label copied into the output")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    {"train": cmd_train, "eval": cmd_eval, "mem-train": cmd_mem_train, "mem-eval": cmd_mem_eval,
     "grad": cmd_grad}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
