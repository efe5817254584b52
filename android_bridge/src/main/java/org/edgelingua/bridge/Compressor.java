package org.edgelingua.bridge;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * LLMLingua-2 compression with a token-classifier bundle: the Java twin of
 * edge_lingua.compressor.Compressor, giving the same kept words and the same output text.
 *
 * <p>The model is behind {@link Model}; apps pass the onnxruntime wrapper
 * ({@code org.edgelingua.bridge.ort.OrtModel}), tests may pass logits recorded from Python.
 *
 * <p>This is Python's {@code structure="text"}: atoms whole or absent (protected categories kept
 * outside the budget), {@code rate=1.0} the identity, indentation and line breaks of kept lines
 * kept, force-token phrases counted inside the budget, units the model cannot read (only
 * {@code [UNK]} tokens) ranked first. Not ported: the structure modes (JSON, markdown, code, chat)
 * and LLMLingua's {@code <llmlingua ...>} tags (refused with an {@link InvalidInputException}),
 * a separate target-LLM tokenizer for token counts, and the context-level filter.
 */
public final class Compressor {
    public static final List<String> DEFAULT_CHUNK_END_TOKENS = List.of(".", "\n");
    public static final String CONTEXT_SEPARATOR = "\n\n";
    /** Below this share of readable (not unknown) tokens a result warns. */
    public static final double LOW_COVERAGE = 0.8;
    /** The keep probability of a unit with no readable token: ranked above every scored unit. */
    public static final float UNREADABLE_PRIORITY = 2.0f;

    /** Runs the classifier on one window of token ids (no special tokens). */
    @FunctionalInterface
    public interface Model {
        /** Logits [window length][labels] of the window's tokens, special tokens left out. */
        float[][] logits(int[] windowTokenIds);
    }

    /** Compression settings; the names follow LLMLingua / the Python runtime. */
    public static final class Options {
        Double rate;
        Integer targetToken;
        List<String> forceTokens = List.of();
        boolean forceReserveDigit;
        boolean dropConsecutive;
        List<String> chunkEndTokens = DEFAULT_CHUNK_END_TOKENS;
        List<String> protect;

        public Options rate(double value) {
            rate = value;
            return this;
        }

        public Options targetToken(int value) {
            targetToken = value;
            return this;
        }

        public Options forceTokens(List<String> value) {
            forceTokens = List.copyOf(value);
            return this;
        }

        public Options forceReserveDigit(boolean value) {
            forceReserveDigit = value;
            return this;
        }

        public Options dropConsecutive(boolean value) {
            dropConsecutive = value;
            return this;
        }

        public Options chunkEndTokens(List<String> value) {
            chunkEndTokens = List.copyOf(value);
            return this;
        }

        /**
         * Atoms kept whatever the budget, outside it: category names ({@link Atoms#CATEGORIES}),
         * "default", "all", "none", or java.util.regex patterns; default {@link Atoms#DEFAULT_PROTECT}.
         */
        public Options protect(List<String> value) {
            protect = List.copyOf(value);
            return this;
        }
    }

    /** What the classifier says about one context. */
    public static final class ContextScores {
        public final Segmented segmented;
        public final List<int[]> windows;
        public final float[][] logits;
        public final float[] tokenProbs;
        /** Mean keep probability of the unit's readable tokens, or UNREADABLE_PRIORITY. */
        public final float[] wordProbs;

        ContextScores(Segmented segmented, List<int[]> windows, float[][] logits, float[] tokenProbs,
                float[] wordProbs) {
            this.segmented = segmented;
            this.windows = windows;
            this.logits = logits;
            this.tokenProbs = tokenProbs;
            this.wordProbs = wordProbs;
        }
    }

    private final WordPieceTokenizer tokenizer;
    private final Model model;
    private final int maxTokens;
    private final int keepLabel;

    public Compressor(WordPieceTokenizer tokenizer, Model model, int maxSeqLen, int keepLabel) {
        this.tokenizer = tokenizer;
        this.model = model;
        this.maxTokens = maxSeqLen - 2;
        this.keepLabel = keepLabel;
    }

    /** A compressor for a bundle's tokenizer and settings, running {@code model}. */
    public static Compressor forBundle(MobileBundle bundle, Model model) {
        return new Compressor(bundle.tokenizer, model, bundle.maxSeqLen, bundle.keepLabel);
    }

    public WordPieceTokenizer tokenizer() {
        return tokenizer;
    }

    /** Keep probabilities of every token and word of one context. */
    public ContextScores score(String text, List<String> chunkEndTokens) {
        contexts(List.of(text));
        return score(Segmented.of(tokenizer, text), chunkEndTokens);
    }

    private ContextScores score(Segmented seg, List<String> chunkEndTokens) {
        List<int[]> windows = Segmentation.windowBounds(seg, maxTokens, chunkEndTokens);
        int n = seg.nTokens();
        float[][] logits = new float[n][];
        for (int[] window : windows) {
            int[] ids = Arrays.copyOfRange(seg.tokenIds, window[0], window[1]);
            float[][] out;
            try {
                out = model.logits(ids);
            } catch (EdgeLinguaException exc) {
                throw exc;
            } catch (RuntimeException exc) {
                throw new InferenceException("the model failed on a window of " + (ids.length + 2)
                        + " tokens: " + exc, exc);
            }
            if (out.length != ids.length) {
                throw new InferenceException("the model returned " + out.length + " rows for a window of "
                        + ids.length + " tokens", null);
            }
            System.arraycopy(out, 0, logits, window[0], ids.length);
        }
        float[] tokenProbs = new float[n];
        double[] sums = new double[seg.nWords()];
        int[] counts = new int[seg.nWords()];
        for (int t = 0; t < n; t++) {
            tokenProbs[t] = keepProbability(logits[t]);
            if (seg.tokenReadable[t]) { // pooled in token order, as numpy's bincount
                sums[seg.tokenWord[t]] += tokenProbs[t];
                counts[seg.tokenWord[t]]++;
            }
        }
        float[] wordProbs = new float[seg.nWords()];
        for (int w = 0; w < wordProbs.length; w++) {
            wordProbs[w] = counts[w] > 0 ? (float) (sums[w] / counts[w]) : UNREADABLE_PRIORITY;
        }
        return new ContextScores(seg, windows, logits, tokenProbs, wordProbs);
    }

    /** Softmax in float64 over one token's logits, rounded once to float32 (as in Python). */
    float keepProbability(float[] row) {
        if (keepLabel >= row.length) {
            throw new InferenceException("the model has " + row.length + " labels, keep_label is "
                    + keepLabel, null);
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double total = 0.0;
        double keep = 0.0;
        for (int k = 0; k < row.length; k++) {
            double e = Math.exp((double) row[k] - max);
            total += e;
            if (k == keepLabel) {
                keep = e;
            }
        }
        return (float) (keep / total);
    }

    /** Compress one prompt made of one context. */
    public CompressionResult compress(String context, Options options) {
        return compress(List.of(context), options);
    }

    /** Compress one prompt made of several contexts, ranked together. */
    public CompressionResult compress(List<String> contexts, Options options) {
        long started = System.nanoTime();
        Selection.Budget budget = Selection.makeBudget(options.rate, options.targetToken);
        Atoms.Protection protection = Atoms.makeProtection(options.protect);
        Selection.forcePhrases(options.forceTokens); // validates
        contexts(contexts);
        List<ContextScores> scores = new ArrayList<>();
        List<String> words = new ArrayList<>();
        List<List<String>> perContext = new ArrayList<>();
        int totalWords = 0;
        for (String c : contexts) {
            ContextScores s = score(Segmented.of(tokenizer, c, protection), options.chunkEndTokens);
            scores.add(s);
            List<String> w = s.segmented.words();
            perContext.add(w);
            words.addAll(w);
            totalWords += w.size();
        }
        int originTokens = 0;
        for (String c : contexts) {
            originTokens += tokenizer.count(c);
        }
        double[] probs = new double[totalWords];
        double[] costs = new double[totalWords];
        boolean[] fixed = new boolean[totalWords];
        boolean[] compressible = new boolean[totalWords];
        double totalCost = 0.0;
        int at = 0;
        for (ContextScores s : scores) {
            int[] wordCosts = s.segmented.wordTokenCounts();
            for (int w = 0; w < wordCosts.length; w++, at++) {
                probs[at] = s.wordProbs[w];
                costs[at] = wordCosts[w];
                totalCost += wordCosts[w];
                // protected atoms are kept like structure: whatever the budget, and outside it
                fixed[at] = s.segmented.units.isProtected[w];
                compressible[at] = !fixed[at];
            }
        }
        double scale = totalCost > 0 ? originTokens / totalCost : 1.0;
        for (int i = 0; i < totalWords; i++) {
            costs[i] *= scale;
        }
        boolean[] forced = Selection.forcedWords(words, options.forceTokens, options.forceReserveDigit);
        boolean anyCompressible = false;
        for (int i = 0; i < totalWords; i++) {
            forced[i] &= compressible[i];
            anyCompressible |= compressible[i];
        }
        boolean[] keep = new boolean[totalWords];
        double allowed;
        if (budget.targetToken == null && (budget.rate >= 1.0 || !anyCompressible)) {
            Arrays.fill(keep, true); // rate 1.0 is the identity
            allowed = Double.POSITIVE_INFINITY;
        } else {
            allowed = keepWithinBudget(keep, probs, costs, fixed, compressible, forced, budget);
        }
        if (options.dropConsecutive) {
            keep = Selection.dropConsecutiveRepeats(words, keep, options.forceTokens);
        }
        boolean[] untouchable = new boolean[totalWords];
        for (int i = 0; i < totalWords; i++) {
            untouchable[i] = !compressible[i] || forced[i];
        }
        List<String> texts;
        int compressedTokens;
        while (true) {
            texts = join(scores, keep);
            compressedTokens = 0;
            for (String t : texts) {
                compressedTokens += t.isEmpty() ? 0 : tokenizer.count(t);
            }
            double excess = compressedTokens - allowed;
            if (excess <= 0 || !anyUnforced(keep, untouchable)) {
                break;
            }
            keep = Selection.trimToBudget(keep, probs, untouchable, (int) Math.ceil(excess));
        }
        List<boolean[]> masks = new ArrayList<>();
        at = 0;
        int tokens = 0;
        int readable = 0;
        for (ContextScores s : scores) {
            masks.add(Arrays.copyOfRange(keep, at, at + s.segmented.nWords()));
            at += s.segmented.nWords();
            for (boolean r : s.segmented.tokenReadable) {
                tokens++;
                readable += r ? 1 : 0;
            }
        }
        double coverage = tokens == 0 ? 1.0 : (double) readable / tokens;
        List<String> notes = new ArrayList<>();
        if (coverage < LOW_COVERAGE) {
            notes.add("only " + new BigDecimal(coverage * 100).setScale(0, RoundingMode.HALF_EVEN)
                    + "% of the text's tokens are known to this model; units it cannot read are kept "
                    + "verbatim first, within the budget");
        }
        List<String> nonEmpty = new ArrayList<>();
        for (String t : texts) {
            if (!t.isEmpty()) {
                nonEmpty.add(t);
            }
        }
        return new CompressionResult(String.join(CONTEXT_SEPARATOR, nonEmpty), List.copyOf(texts),
                List.copyOf(perContext), masks, originTokens, compressedTokens,
                (System.nanoTime() - started) / 1e9, coverage, List.copyOf(notes));
    }

    /**
     * Python's _keep_within_budgets for text: fixed (protected) units, then the best compressible
     * units within {@code rate} of their tokens, or {@code targetToken} less the fixed ones. Marks
     * them in {@code keep}; returns the token count the output may reach.
     */
    private static double keepWithinBudget(boolean[] keep, double[] probs, double[] costs, boolean[] fixed,
            boolean[] compressible, boolean[] forced, Selection.Budget budget) {
        System.arraycopy(fixed, 0, keep, 0, keep.length);
        double allowed = Selection.sum(costs, fixed);
        int[] index = java.util.stream.IntStream.range(0, keep.length).filter(i -> compressible[i]).toArray();
        if (index.length == 0) {
            return allowed;
        }
        double[] groupProbs = new double[index.length];
        double[] groupCosts = new double[index.length];
        boolean[] groupForced = new boolean[index.length];
        for (int k = 0; k < index.length; k++) {
            groupProbs[k] = probs[index[k]];
            groupCosts[k] = costs[index[k]];
            groupForced[k] = forced[index[k]];
        }
        double limit = budget.targetToken != null ? budget.targetToken - allowed
                : budget.rate * Selection.sum(groupCosts, null);
        boolean[] chosen = Selection.select(groupProbs, groupCosts, groupForced, limit);
        for (int k = 0; k < index.length; k++) {
            keep[index[k]] |= chosen[k];
        }
        return allowed + Math.max(limit, Selection.sum(groupCosts, groupForced));
    }

    private static List<String> join(List<ContextScores> scores, boolean[] keep) {
        List<String> texts = new ArrayList<>();
        int offset = 0;
        for (ContextScores s : scores) {
            texts.add(Segmentation.joinUnits(s.segmented, keep, offset));
            offset += s.segmented.nWords();
        }
        return texts;
    }

    private static boolean anyUnforced(boolean[] keep, boolean[] forced) {
        for (int i = 0; i < keep.length; i++) {
            if (keep[i] && !forced[i]) {
                return true;
            }
        }
        return false;
    }

    /** The Python runtime's input checks: some non-blank text, valid Unicode; no LLMLingua tags. */
    private static void contexts(List<String> contexts) {
        boolean blank = true;
        for (String c : contexts) {
            if (c == null) {
                throw new InvalidInputException("a context is null");
            }
            if (c.contains("<llmlingua") || c.contains("</llmlingua")) {
                throw new InvalidInputException("<llmlingua ...> tags are honoured by the Python runtime "
                        + "only; the Android bridge compresses plain text (structure=\"text\")");
            }
            for (int i = 0; i < c.length(); i++) {
                char ch = c.charAt(i);
                boolean high = Character.isHighSurrogate(ch);
                if (high && i + 1 < c.length() && Character.isLowSurrogate(c.charAt(i + 1))) {
                    i++;
                    blank = false;
                } else if (high || Character.isLowSurrogate(ch)) {
                    throw new InvalidInputException("text is not valid Unicode: a lone surrogate at "
                            + "index " + i);
                } else if (!PythonText.isSpace(ch)) {
                    blank = false;
                }
            }
        }
        if (blank) {
            throw new InvalidInputException("nothing to compress: the text is empty or whitespace only");
        }
    }

}
