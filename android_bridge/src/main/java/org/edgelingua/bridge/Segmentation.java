package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Tokens to units, encoder windows, and rebuilding the output (edge_lingua.segmentation). */
public final class Segmentation {
    private Segmentation() {
    }

    /**
     * Unit index of every token: the unit holding the token's first non-space character (a token
     * of white space only goes with the unit after it). Offsets are UTF-16 indices.
     */
    static int[] attachTokens(Units units, int[] tokenStart, int[] tokenEnd) {
        int n = tokenStart.length;
        int[] tokenUnit = new int[n];
        if (n == 0 || units.size() == 0) {
            return tokenUnit;
        }
        String text = units.text;
        for (int i = 0; i < n; i++) {
            int anchor = tokenStart[i];
            if (tokenStart[i] < tokenEnd[i] && PythonText.isSpace(text.charAt(tokenStart[i]))) {
                anchor = tokenEnd[i];
                for (int k = tokenStart[i]; k < tokenEnd[i]; k++) {
                    if (!PythonText.isSpace(text.charAt(k))) {
                        anchor = k;
                        break;
                    }
                }
            }
            // numpy searchsorted(unit starts, anchor, side="right") - 1, clipped to the units
            int lo = 0;
            int hi = units.size();
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (units.start[mid] <= anchor) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            tokenUnit[i] = Math.min(Math.max(lo - 1, 0), units.size() - 1);
        }
        return tokenUnit;
    }

    /**
     * Cut a context's tokens into windows of at most {@code maxTokens}, as {start, end} pairs.
     *
     * <p>Windows end at a unit that is a chunk-end token (or, for "\n", a unit followed by a line
     * break) when one lies inside the window, else at the last whole unit that fits; only a single
     * unit longer than a window is split inside.
     */
    public static List<int[]> windowBounds(Segmented seg, int maxTokens, List<String> chunkEndTokens) {
        int n = seg.nTokens();
        List<int[]> windows = new ArrayList<>();
        if (n <= maxTokens) {
            if (n > 0) {
                windows.add(new int[] {0, n});
            }
            return windows;
        }
        Set<String> ends = new HashSet<>(chunkEndTokens);
        boolean splitOnNewline = ends.contains("\n");
        int words = seg.nWords();
        String text = seg.text;
        boolean[] isChunkEnd = new boolean[words];
        for (int w = 0; w < words; w++) {
            if (ends.contains(seg.word(w))) {
                isChunkEnd[w] = true;
            } else if (splitOnNewline) {
                int next = w + 1 < words ? seg.wordStart[w + 1] : text.length();
                isChunkEnd[w] = next > seg.wordEnd[w] && text.substring(seg.wordEnd[w], next).contains("\n");
            }
        }
        // a window may end after token i - 1 when token i starts another unit, and at the end
        int[] boundary = new int[n];
        int nBoundaries = 0;
        int[] chunkCuts = new int[n];
        int nCuts = 0;
        for (int i = 1; i <= n; i++) {
            if (i == n || seg.tokenWord[i] != seg.tokenWord[i - 1]) {
                boundary[nBoundaries++] = i;
                if (isChunkEnd[seg.tokenWord[i - 1]]) {
                    chunkCuts[nCuts++] = i;
                }
            }
        }
        boundary = Arrays.copyOf(boundary, nBoundaries);
        chunkCuts = Arrays.copyOf(chunkCuts, nCuts);
        int start = 0;
        while (n - start > maxTokens) {
            int limit = start + maxTokens;
            int cut = lastIn(chunkCuts, start, limit);
            if (cut < 0) {
                cut = lastIn(boundary, start, limit);
            }
            if (cut < 0) {
                cut = limit;
            }
            windows.add(new int[] {start, cut});
            start = cut;
        }
        windows.add(new int[] {start, n});
        return windows;
    }

    /** Largest value v in the sorted array with low < v <= high, or -1. */
    private static int lastIn(int[] sortedCuts, int low, int high) {
        int lo = 0;
        int hi = sortedCuts.length; // first index with value > high
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sortedCuts[mid] <= high) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        int idx = lo - 1;
        return idx >= 0 && sortedCuts[idx] > low ? sortedCuts[idx] : -1;
    }

    /**
     * Rebuild a context from its kept units, line by line (Python's join_units).
     *
     * <p>Everything kept is the identity. A line with every unit kept is copied as it is; a line
     * with some kept keeps its indentation and line ending, its kept units separated as in the
     * input where they were neighbours, else by a space (none between CJK characters); a line
     * with none kept disappears with its line break. Blank lines stay, except that a dropped
     * stretch never leaves two paragraph breaks in a row or a leading one.
     */
    public static String joinUnits(Segmented seg, boolean[] keep, int offset) {
        int units = seg.nWords();
        int kept = 0;
        for (int u = 0; u < units; u++) {
            kept += keep[offset + u] ? 1 : 0;
        }
        String text = seg.text;
        if (kept == units) {
            return text;
        }
        if (kept == 0) {
            return "";
        }
        StringBuilder out = new StringBuilder();
        boolean dropped = false;
        boolean lastBlank = true; // nothing emitted yet counts as a paragraph start
        int u = 0;
        int lineStart = 0;
        while (lineStart <= text.length()) {
            int newline = text.indexOf('\n', lineStart);
            int lineEnd = newline < 0 ? text.length() : newline + 1;
            int lo = u;
            while (u < units && seg.wordStart[u] < lineEnd) {
                u++;
            }
            int hi = u;
            if (lo == hi) { // blank line
                if (!(dropped && lastBlank)) {
                    out.append(text, lineStart, lineEnd);
                    lastBlank = true;
                }
            } else {
                int keptHere = 0;
                for (int k = lo; k < hi; k++) {
                    keptHere += keep[offset + k] ? 1 : 0;
                }
                if (keptHere == 0) {
                    dropped = true;
                } else {
                    if (keptHere == hi - lo) {
                        out.append(text, lineStart, lineEnd);
                    } else {
                        appendPartialLine(out, seg, keep, offset, lo, hi, lineStart, lineEnd);
                    }
                    lastBlank = false;
                    dropped = false;
                }
            }
            if (newline < 0) {
                break;
            }
            lineStart = lineEnd;
        }
        return out.toString();
    }

    private static void appendPartialLine(StringBuilder out, Segmented seg, boolean[] keep, int offset,
            int lo, int hi, int lineStart, int lineEnd) {
        String text = seg.text;
        out.append(text, lineStart, seg.wordStart[lo]); // indentation
        int previous = -1;
        for (int unit = lo; unit < hi; unit++) {
            if (!keep[offset + unit]) {
                continue;
            }
            int uStart = seg.wordStart[unit];
            if (previous >= 0) {
                int pEnd = seg.wordEnd[previous];
                if (unit == previous + 1) {
                    out.append(text, pEnd, Math.max(pEnd, uStart));
                } else {
                    out.append(separator(text, pEnd, uStart));
                }
            }
            out.append(text, uStart, seg.wordEnd[unit]);
            previous = unit;
        }
        // the line break ending the line: \n, \r\n or none (the last line)
        if (lineEnd > lineStart && text.charAt(lineEnd - 1) == '\n') {
            out.append(lineEnd - lineStart >= 2 && text.charAt(lineEnd - 2) == '\r' ? "\r\n" : "\n");
        }
    }

    /**
     * What stands between two kept units that had dropped units between them (Python's
     * _separator): a space next to an ASCII digit, nothing between CJK characters, else a space
     * where the input had one or where two words would be glued into a new one.
     */
    private static String separator(String text, int leftEnd, int rightStart) {
        int left = text.codePointBefore(leftEnd);
        int right = text.codePointAt(rightStart);
        if ((left >= '0' && left <= '9') || (right >= '0' && right <= '9')) {
            return " ";
        }
        if (Units.isCjk(left) && Units.isCjk(right)) {
            return "";
        }
        for (int i = leftEnd; i < rightStart; i++) {
            if (PythonText.isSpace(text.charAt(i))) {
                return " ";
            }
        }
        if (PythonText.isAlnum(left) && PythonText.isAlnum(right) && !(Units.isCjk(left) || Units.isCjk(right))) {
            return " "; // never glue two words into a new one
        }
        return "";
    }
}
