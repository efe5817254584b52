// Second parity check, outside Python: run a bundle's model with onnxruntime-node and tokenize
// with @huggingface/tokenizers (tokenizers.js), over the golden vectors written by
// export/golden.py. Token ids must equal Python's; logits must agree within --tolerance.
//
//   node parity.mjs --bundle DIR --golden FILE [--model FILE] [--tolerance 1e-5] [--report OUT]
//
// --model runs another file than the manifest's model_file (e.g. the .ort conversion of the
// same graph). Exit status: 0 parity holds, 1 a mismatch, 2 bad arguments.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-node";
import { Tokenizer } from "@huggingface/tokenizers";

function parseArgs(argv) {
  const args = { tolerance: 1e-5 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!["bundle", "golden", "model", "tolerance", "report"].includes(key) || i + 1 >= argv.length) {
      throw new Error(`unknown or incomplete argument ${argv[i]}`);
    }
    args[key] = key === "tolerance" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!args.bundle || !args.golden) throw new Error("--bundle and --golden are required");
  return args;
}

function feeds(session, ids, bos, eos) {
  const width = ids.length + 2;
  const row = [bos, ...ids, eos];
  const types = new Map(
    (session.inputMetadata ?? []).map((m) => [m.name, m.isTensor ? m.type : "int64"]),
  );
  const values = {
    input_ids: row,
    attention_mask: row.map(() => 1),
    token_type_ids: row.map(() => 0),
  };
  const out = {};
  for (const name of session.inputNames) {
    if (!(name in values)) throw new Error(`the model wants an input the bridge does not feed: ${name}`);
    const data = types.get(name) === "int32"
      ? Int32Array.from(values[name])
      : BigInt64Array.from(values[name], (v) => BigInt(v));
    out[name] = new ort.Tensor(types.get(name) === "int32" ? "int32" : "int64", data, [1, width]);
  }
  return out;
}

// Where tokenizers.js 0.2 is known to differ from the Rust tokenizers (the reference, which the
// Java library matches): it does not space out CJK ideographs outside the BMP (U+20000..), and it
// lowercases a word-final capital sigma to final sigma (Rust maps every capital sigma to σ).
const TOKENIZERS_JS_GAPS = [/[\u{20000}-\u{2FA1F}]/u, /\p{L}Σ(?!\p{L})/u];

function percentile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(String(err.message));
    return 2;
  }
  const manifest = JSON.parse(readFileSync(join(args.bundle, "manifest.json"), "utf8"));
  const golden = JSON.parse(readFileSync(args.golden, "utf8"));
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(join(args.bundle, manifest.tokenizer_file), "utf8")),
    {},
  );
  const modelPath = args.model ?? join(args.bundle, manifest.model_file);
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
  const { bos, eos } = manifest.special_tokens;
  const problems = [];
  const knownGaps = [];
  const windowMs = [];
  let maxDiff = 0;
  let tokens = 0;
  let windows = 0;
  for (const c of golden.cases) {
    for (const [index, context] of c.contexts.entries()) {
      const ids = tokenizer.encode(context.text, { add_special_tokens: false }).ids;
      if (ids.length !== context.token_ids.length || ids.some((v, i) => v !== context.token_ids[i])) {
        const at = ids.findIndex((v, i) => v !== context.token_ids[i]);
        const note = `${c.name}: tokenizers.js ids differ from Python at token ${at}`;
        (TOKENIZERS_JS_GAPS.some((re) => re.test(context.text)) ? knownGaps : problems).push(note);
      }
      // the windows and logits of the default run, and of runs with other chunk ends
      const runs = [context, ...c.results.filter((r) => r.rescored).map((r) => r.rescored[index])];
      for (const run of runs) {
        for (const [lo, hi] of run.windows) {
          const window = context.token_ids.slice(lo, hi);
          const started = performance.now();
          const out = await session.run(feeds(session, window, bos, eos));
          windowMs.push(performance.now() - started);
          const logits = out.logits;
          const labels = logits.dims[2];
          for (let t = lo; t < hi; t++) {
            for (let k = 0; k < labels; k++) {
              const got = logits.data[(t - lo + 1) * labels + k];
              const diff = Math.abs(got - run.logits[t][k]);
              maxDiff = Math.max(maxDiff, diff);
              if (!(diff <= args.tolerance)) {
                problems.push(`${c.name}: logit [${t}][${k}] ${got} vs Python ${run.logits[t][k]}`);
              }
            }
          }
          windows += 1;
          tokens += hi - lo;
        }
      }
    }
  }
  windowMs.sort((a, b) => a - b);
  const report = {
    model: modelPath,
    onnxruntime_node: ort.env.versions?.node ?? null,
    cases: golden.cases.length,
    windows,
    tokens,
    max_abs_logit_diff: maxDiff,
    tolerance: args.tolerance,
    window_ms_p50: percentile(windowMs, 0.5),
    window_ms_p90: percentile(windowMs, 0.9),
    window_ms_total: windowMs.reduce((a, b) => a + b, 0),
    tokenizer_js_known_gaps: knownGaps,
    problems: problems.slice(0, 20),
    n_problems: problems.length,
  };
  if (args.report) writeFileSync(args.report, JSON.stringify(report, null, 2) + "\n");
  console.log(JSON.stringify(report, null, 2));
  return problems.length ? 1 : 0;
}

process.exitCode = await main();
