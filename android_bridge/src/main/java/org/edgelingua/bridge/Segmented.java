package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One context cut into tokens and words (edge_lingua.segmentation.Segmented).
 *
 * <p>Words are the pre-tokenizer's words; {@code wordStart/wordEnd} are UTF-16 indices into
 * {@link #text}, {@code wordCpStart/wordCpEnd} the same spans in code points (Python's indices).
 */
public final class Segmented {
    public final String text;
    public final int[] tokenIds;
    public final int[] tokenWord;
    public final int[] wordStart;
    public final int[] wordEnd;
    public final int[] wordCpStart;
    public final int[] wordCpEnd;

    private Segmented(String text, int[] tokenIds, int[] tokenWord, int[] wordStart, int[] wordEnd,
            int[] wordCpStart, int[] wordCpEnd) {
        this.text = text;
        this.tokenIds = tokenIds;
        this.tokenWord = tokenWord;
        this.wordStart = wordStart;
        this.wordEnd = wordEnd;
        this.wordCpStart = wordCpStart;
        this.wordCpEnd = wordCpEnd;
    }

    /** Tokenize {@code text} (no special tokens) and group its tokens into words. */
    public static Segmented of(WordPieceTokenizer tokenizer, String text) {
        Encoding enc = tokenizer.encode(text);
        int n = enc.size();
        int[] tokenWord = new int[n];
        int words = 0;
        for (int i = 0; i < n; i++) {
            // a new word starts where the word id changes; a token without one stands alone
            boolean starts = i == 0 || enc.wordIds[i] != enc.wordIds[i - 1] || enc.wordIds[i] < 0;
            if (starts) {
                words++;
            }
            tokenWord[i] = words - 1;
        }
        int[] start = filled(words, Integer.MAX_VALUE);
        int[] end = filled(words, -1);
        int[] cpStart = filled(words, Integer.MAX_VALUE);
        int[] cpEnd = filled(words, -1);
        for (int i = 0; i < n; i++) {
            int w = tokenWord[i];
            start[w] = Math.min(start[w], enc.charStart[i]);
            end[w] = Math.max(end[w], enc.charEnd[i]);
            cpStart[w] = Math.min(cpStart[w], enc.cpStart[i]);
            cpEnd[w] = Math.max(cpEnd[w], enc.cpEnd[i]);
        }
        return new Segmented(text, enc.ids, tokenWord, start, end, cpStart, cpEnd);
    }

    public int nTokens() {
        return tokenIds.length;
    }

    public int nWords() {
        return wordStart.length;
    }

    public String word(int index) {
        return text.substring(wordStart[index], wordEnd[index]);
    }

    public List<String> words() {
        List<String> words = new ArrayList<>(nWords());
        for (int w = 0; w < nWords(); w++) {
            words.add(word(w));
        }
        return words;
    }

    /** Tokens per word: what each word costs in the bundle tokenizer's tokens. */
    public int[] wordTokenCounts() {
        int[] counts = new int[nWords()];
        for (int w : tokenWord) {
            counts[w]++;
        }
        return counts;
    }

    private static int[] filled(int n, int value) {
        int[] a = new int[n];
        Arrays.fill(a, value);
        return a;
    }
}
