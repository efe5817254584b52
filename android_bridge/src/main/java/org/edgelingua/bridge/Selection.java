package org.edgelingua.bridge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Budgeted word selection (edge_lingua.selection), step for step.
 *
 * <p>Units are ranked by keep probability (ties by position) and taken while their tokens fit
 * the budget; forced units (force-token phrases, digits on request) are taken first and count
 * against it (when they alone exceed it they are all kept, and nothing else is).
 * Probabilities are compared with {@code <}/{@code >} like numpy (so 0.0 equals -0.0).
 */
public final class Selection {
    public static final double DEFAULT_RATE = 0.5;

    private Selection() {
    }

    /** A target size in tokens: {@code rate} of the original, or {@code targetToken}. */
    public static final class Budget {
        public final Double rate;
        public final Integer targetToken;

        private Budget(Double rate, Integer targetToken) {
            this.rate = rate;
            this.targetToken = targetToken;
        }

        public double tokens(int originTokens) {
            return targetToken != null ? (double) targetToken : rate * originTokens;
        }
    }

    /** Validate rate / targetToken (either may be null); targetToken wins when both are given. */
    public static Budget makeBudget(Double rate, Integer targetToken) {
        if (targetToken != null) {
            if (targetToken <= 0) {
                throw new InvalidInputException("target_token must be > 0, got " + targetToken);
            }
            return new Budget(null, targetToken);
        }
        if (rate == null) {
            return new Budget(DEFAULT_RATE, null);
        }
        if (!Double.isFinite(rate) || !(rate > 0.0 && rate <= 1.0)) {
            throw new InvalidInputException("rate must be in (0, 1], got " + rate);
        }
        return new Budget(rate, null);
    }

    /**
     * Each force token as the units it is made of ({@code "The answer is"} is three). A force
     * token of white space only ({@code "\n"}) has none: line breaks of kept lines are kept anyway.
     */
    public static List<List<String>> forcePhrases(List<String> forceTokens) {
        List<List<String>> phrases = new ArrayList<>();
        Atoms.Protection protection = Atoms.makeProtection(null);
        for (String token : forceTokens) {
            if (token == null) {
                throw new InvalidInputException("force_tokens must be strings, got null");
            }
            List<String> units = Units.split(token, protection).texts();
            if (!units.isEmpty()) {
                phrases.add(units);
            }
        }
        return phrases;
    }

    /** Units kept first: every occurrence of a force phrase, and units with a digit when asked. */
    public static boolean[] forcedWords(List<String> words, List<String> forceTokens,
            boolean forceReserveDigit) {
        boolean[] forced = new boolean[words.size()];
        if (forceReserveDigit) {
            for (int i = 0; i < forced.length; i++) {
                // Python's re \d on str: any Unicode decimal digit (category Nd)
                forced[i] = words.get(i).codePoints().anyMatch(Character::isDigit);
            }
        }
        Map<String, List<List<String>>> byFirst = new HashMap<>();
        for (List<String> phrase : forcePhrases(forceTokens)) {
            byFirst.computeIfAbsent(phrase.get(0), k -> new ArrayList<>()).add(phrase);
        }
        for (int index = 0; index < forced.length; index++) {
            for (List<String> phrase : byFirst.getOrDefault(words.get(index), List.of())) {
                int end = index + phrase.size();
                if (end <= words.size() && words.subList(index, end).equals(phrase)) {
                    Arrays.fill(forced, index, end, true);
                }
            }
        }
        return forced;
    }

    /** Keep forced words, then the most probable others while their tokens fit {@code budget}. */
    public static boolean[] select(double[] probs, double[] costs, boolean[] forced, double budget) {
        boolean[] keep = forced.clone();
        double remaining = budget - sum(costs, forced);
        Integer[] candidates = indices(forced, false, null);
        if (remaining <= 0 || candidates.length == 0) {
            return keep;
        }
        // numpy argsort(-probs, kind="stable"): descending, ties by position
        Arrays.sort(candidates, (a, b) -> probs[a] > probs[b] ? -1 : probs[a] < probs[b] ? 1 : a - b);
        double total = 0.0;
        for (int i : candidates) {
            total += costs[i];
            if (!(total <= remaining)) { // a threshold: stop at the first word that does not fit
                break;
            }
            keep[i] = true;
        }
        return keep;
    }

    /** Drop a kept single-unit force token that repeats the kept force token right before it. */
    public static boolean[] dropConsecutiveRepeats(List<String> words, boolean[] keep,
            List<String> forceTokens) {
        Set<String> force = new HashSet<>();
        for (List<String> phrase : forcePhrases(forceTokens)) {
            if (phrase.size() == 1) {
                force.add(phrase.get(0));
            }
        }
        boolean[] out = keep.clone();
        String previous = null;
        for (int i = 0; i < out.length; i++) {
            if (!keep[i]) {
                continue;
            }
            String word = words.get(i);
            if (force.contains(word) && word.equals(previous)) {
                out[i] = false;
                continue;
            }
            previous = force.contains(word) ? word : null;
        }
        return out;
    }

    /** Drop the {@code n} (at least one) least probable kept, unforced words. */
    public static boolean[] trimToBudget(boolean[] keep, double[] probs, boolean[] forced, int n) {
        boolean[] out = keep.clone();
        Integer[] removable = indices(forced, false, keep);
        Arrays.sort(removable, (a, b) -> probs[a] < probs[b] ? -1 : probs[a] > probs[b] ? 1 : a - b);
        for (int k = 0; k < Math.min(Math.max(1, n), removable.length); k++) {
            out[removable[k]] = false;
        }
        return out;
    }

    /** Sum of the values where {@code mask} is true (all of them when it is null), in order. */
    static double sum(double[] values, boolean[] mask) {
        double total = 0.0;
        for (int i = 0; i < values.length; i++) {
            if (mask == null || mask[i]) {
                total += values[i];
            }
        }
        return total;
    }

    /** Indices i with mask[i] == value (and also[i], when given), ascending. */
    private static Integer[] indices(boolean[] mask, boolean value, boolean[] also) {
        return java.util.stream.IntStream.range(0, mask.length)
                .filter(i -> mask[i] == value && (also == null || also[i]))
                .boxed().toArray(Integer[]::new);
    }
}
