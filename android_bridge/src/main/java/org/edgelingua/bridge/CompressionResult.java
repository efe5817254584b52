package org.edgelingua.bridge;

import java.util.List;

/**
 * A compressed prompt and how it was made (edge_lingua.result.CompressionResult).
 *
 * <p>{@code keptMask.get(i)[j]} says whether word j of context i was kept; token counts use the
 * bundle's tokenizer. {@code coverage} is the share of input tokens the model can read (not its
 * unknown token); {@code warnings} what the caller should know (low coverage), as in Python.
 */
public final class CompressionResult {
    public final String compressedPrompt;
    public final List<String> compressedContexts;
    public final List<List<String>> words;
    public final List<boolean[]> keptMask;
    public final int originTokens;
    public final int compressedTokens;
    public final double elapsedSeconds;
    public final double coverage;
    public final List<String> warnings;

    CompressionResult(String compressedPrompt, List<String> compressedContexts,
            List<List<String>> words, List<boolean[]> keptMask, int originTokens,
            int compressedTokens, double elapsedSeconds, double coverage, List<String> warnings) {
        this.compressedPrompt = compressedPrompt;
        this.compressedContexts = compressedContexts;
        this.words = words;
        this.keptMask = keptMask;
        this.originTokens = originTokens;
        this.compressedTokens = compressedTokens;
        this.elapsedSeconds = elapsedSeconds;
        this.coverage = coverage;
        this.warnings = warnings;
    }

    /** origin / compressed tokens (3.0 means 3x smaller). */
    public double ratio() {
        return compressedTokens == 0 ? Double.POSITIVE_INFINITY : (double) originTokens / compressedTokens;
    }
}
