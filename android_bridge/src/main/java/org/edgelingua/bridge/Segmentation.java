package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Encoder windows and output rebuilding (edge_lingua.segmentation). */
public final class Segmentation {
    private Segmentation() {
    }

    /**
     * Cut a context's tokens into windows of at most {@code maxTokens}, as {start, end} pairs.
     *
     * <p>Windows end at a word that is a chunk-end token (or, for "\n", a word followed by a line
     * break) when one lies inside the window, else at the last whole word that fits; only a single
     * word longer than a window is split inside.
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
        // token index after which a window may end: the start of the next word
        int[] boundary = new int[words];
        for (int i = 1; i < n; i++) {
            if (seg.tokenWord[i] != seg.tokenWord[i - 1]) {
                boundary[seg.tokenWord[i - 1]] = i;
            }
        }
        boundary[words - 1] = n;
        int[] chunkCuts = new int[words];
        int nCuts = 0;
        String text = seg.text;
        for (int w = 0; w < words; w++) {
            boolean isEnd;
            if (ends.contains(seg.word(w))) {
                isEnd = true;
            } else if (splitOnNewline) {
                int next = w + 1 < words ? seg.wordStart[w + 1] : text.length();
                isEnd = text.substring(seg.wordEnd[w], Math.max(next, seg.wordEnd[w])).contains("\n");
            } else {
                isEnd = false;
            }
            if (isEnd) {
                chunkCuts[nCuts++] = boundary[w];
            }
        }
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
     * Rebuild a context from its kept words: kept words that touched in the input touch in the
     * output; otherwise they are separated by a line break if the gap held one, else by a space.
     */
    public static String joinWords(Segmented seg, boolean[] keep, int offset) {
        StringBuilder out = new StringBuilder();
        int prevEnd = -1;
        for (int w = 0; w < seg.nWords(); w++) {
            if (!keep[offset + w]) {
                continue;
            }
            int start = seg.wordStart[w];
            int end = seg.wordEnd[w];
            if (prevEnd >= 0 && start > prevEnd) {
                out.append(seg.text.substring(prevEnd, start).contains("\n") ? "\n" : " ");
            } else if (prevEnd >= 0 && start < prevEnd) { // overlapping spans: never repeat text
                start = prevEnd;
            }
            if (start < end) {
                out.append(seg.text, start, end);
            }
            prevEnd = Math.max(end, prevEnd);
        }
        return out.toString();
    }
}
