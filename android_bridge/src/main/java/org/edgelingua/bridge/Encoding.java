package org.edgelingua.bridge;

/**
 * Tokens of one text: ids, the pre-tokenizer word each token belongs to, and where each token
 * lies in the original text.
 *
 * <p>Offsets come twice: {@code charStart/charEnd} are UTF-16 indices for
 * {@link String#substring}; {@code cpStart/cpEnd} are Unicode code point indices, which is what
 * Python's {@code tokenizers} reports (they differ after an emoji or any other character outside
 * the Basic Multilingual Plane).
 */
public final class Encoding {
    public final int[] ids;
    public final int[] wordIds;
    public final int[] cpStart;
    public final int[] cpEnd;
    public final int[] charStart;
    public final int[] charEnd;

    Encoding(int[] ids, int[] wordIds, int[] cpStart, int[] cpEnd, int[] charStart, int[] charEnd) {
        this.ids = ids;
        this.wordIds = wordIds;
        this.cpStart = cpStart;
        this.cpEnd = cpEnd;
        this.charStart = charStart;
        this.charEnd = charEnd;
    }

    public int size() {
        return ids.length;
    }
}
