package org.edgelingua.bridge;

import java.util.List;

/**
 * One context as units with the bundle tokenizer's tokens attached
 * (edge_lingua.segmentation.Segmented).
 *
 * <p>Words are {@link Units}; {@code wordStart/wordEnd} are UTF-16 indices into {@link #text},
 * {@code wordCpStart/wordCpEnd} the same spans in code points (Python's indices). Each token
 * belongs to the unit holding its first non-space character.
 */
public final class Segmented {
    public final String text;
    public final Units units;
    public final int[] tokenIds;
    public final int[] tokenWord;
    /** The token is not the tokenizer's unknown token. */
    public final boolean[] tokenReadable;
    public final int[] wordStart;
    public final int[] wordEnd;
    public final int[] wordCpStart;
    public final int[] wordCpEnd;

    private Segmented(Units units, int[] tokenIds, int[] tokenWord, boolean[] tokenReadable) {
        this.text = units.text;
        this.units = units;
        this.tokenIds = tokenIds;
        this.tokenWord = tokenWord;
        this.tokenReadable = tokenReadable;
        this.wordStart = units.start;
        this.wordEnd = units.end;
        this.wordCpStart = units.cpStart;
        this.wordCpEnd = units.cpEnd;
    }

    /** Units of {@code text} with the default protection, and its tokens (no special tokens). */
    public static Segmented of(WordPieceTokenizer tokenizer, String text) {
        return of(tokenizer, text, Atoms.makeProtection(null));
    }

    /** Cut {@code text} into units and tokenize it, attaching tokens to units. */
    public static Segmented of(WordPieceTokenizer tokenizer, String text, Atoms.Protection protection) {
        Units units = Units.split(text, protection);
        Encoding enc = tokenizer.encode(text);
        int unk = tokenizer.unknownTokenId();
        boolean[] readable = new boolean[enc.size()];
        for (int i = 0; i < readable.length; i++) {
            readable[i] = unk < 0 || enc.ids[i] != unk;
        }
        return new Segmented(units, enc.ids, Segmentation.attachTokens(units, enc.charStart, enc.charEnd),
                readable);
    }

    public int nTokens() {
        return tokenIds.length;
    }

    public int nWords() {
        return units.size();
    }

    public String word(int index) {
        return units.unit(index);
    }

    public List<String> words() {
        return units.texts();
    }

    /** Tokens per unit: what each unit costs in the bundle tokenizer's tokens. */
    public int[] wordTokenCounts() {
        int[] counts = new int[nWords()];
        for (int w : tokenWord) {
            counts[w]++;
        }
        return counts;
    }
}
