package org.edgelingua.bridge;

import java.util.List;

/**
 * A compressed prompt and how it was made (edge_lingua.result.CompressionResult).
 *
 * <p>{@code keptMask.get(i)[j]} says whether word j of context i was kept; token counts use the
 * bundle's tokenizer.
 */
public final class CompressionResult {
    public final String compressedPrompt;
    public final List<String> compressedContexts;
    public final List<List<String>> words;
    public final List<boolean[]> keptMask;
    public final int originTokens;
    public final int compressedTokens;
    public final double elapsedSeconds;

    CompressionResult(String compressedPrompt, List<String> compressedContexts,
            List<List<String>> words, List<boolean[]> keptMask, int originTokens,
            int compressedTokens, double elapsedSeconds) {
        this.compressedPrompt = compressedPrompt;
        this.compressedContexts = compressedContexts;
        this.words = words;
        this.keptMask = keptMask;
        this.originTokens = originTokens;
        this.compressedTokens = compressedTokens;
        this.elapsedSeconds = elapsedSeconds;
    }

    /** origin / compressed tokens (3.0 means 3x smaller). */
    public double ratio() {
        return compressedTokens == 0 ? Double.POSITIVE_INFINITY : (double) originTokens / compressedTokens;
    }
}
