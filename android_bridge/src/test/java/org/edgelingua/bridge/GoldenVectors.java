package org.edgelingua.bridge;

import static org.junit.Assert.assertArrayEquals;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import java.util.Map;

/** Reading golden_vectors.json (written by export/golden.py) for the tests and the timings. */
final class GoldenVectors {
    private GoldenVectors() {
    }

    /** The model logits Python recorded, served window by window in the order Java asks. */
    static final class RecordedModel implements Compressor.Model {
        private final Deque<int[]> windowIds = new ArrayDeque<>();
        private final Deque<float[][]> windowLogits = new ArrayDeque<>();

        RecordedModel(List<Map<String, Object>> contexts) {
            this(contexts, contexts);
        }

        /** Token ids from {@code contexts}, windows and their logits from {@code runs}. */
        RecordedModel(List<Map<String, Object>> contexts, List<Map<String, Object>> runs) {
            for (int c = 0; c < contexts.size(); c++) {
                int[] ids = ints(contexts.get(c).get("token_ids"));
                List<Object> rows = list(runs.get(c).get("logits"));
                for (Object w : list(runs.get(c).get("windows"))) {
                    int[] bounds = ints(w);
                    windowIds.add(Arrays.copyOfRange(ids, bounds[0], bounds[1]));
                    float[][] logits = new float[bounds[1] - bounds[0]][];
                    for (int t = bounds[0]; t < bounds[1]; t++) {
                        logits[t - bounds[0]] = floats(rows.get(t));
                    }
                    windowLogits.add(logits);
                }
            }
        }

        @Override
        public float[][] logits(int[] ids) {
            int[] expected = windowIds.poll();
            assertArrayEquals("the window Java asks for is not the one Python ran", expected, ids);
            return windowLogits.poll();
        }
    }

    static Compressor.Options options(Map<String, Object> opts) {
        Compressor.Options o = new Compressor.Options();
        for (Map.Entry<String, Object> e : opts.entrySet()) {
            switch (e.getKey()) {
                case "rate": o.rate(((Number) e.getValue()).doubleValue()); break;
                case "target_token": o.targetToken(((Long) e.getValue()).intValue()); break;
                case "force_tokens": o.forceTokens(strings(e.getValue())); break;
                case "force_reserve_digit": o.forceReserveDigit((Boolean) e.getValue()); break;
                case "drop_consecutive": o.dropConsecutive((Boolean) e.getValue()); break;
                case "chunk_end_tokens": o.chunkEndTokens(strings(e.getValue())); break;
                case "protect": o.protect(strings(e.getValue())); break;
                default: throw new AssertionError("golden option the Java port lacks: " + e.getKey());
            }
        }
        return o;
    }

    static List<Map<String, Object>> allContexts(List<Map<String, Object>> cases) {
        List<Map<String, Object>> all = new ArrayList<>();
        for (Map<String, Object> c : cases) {
            all.addAll(maps(c.get("contexts")));
        }
        return all;
    }

    static String required(String property) {
        String value = System.getProperty(property);
        if (value == null) {
            throw new IllegalStateException("set -D" + property);
        }
        return value;
    }

    static String describe(String text) {
        String head = text.length() > 40 ? text.substring(0, 40) + "..." : text;
        return "\"" + head.replace("\n", "\\n") + "\"";
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object value) {
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object value) {
        return (List<Object>) value;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> maps(Object value) {
        return (List<Map<String, Object>>) value;
    }

    static List<String> strings(Object value) {
        List<String> out = new ArrayList<>();
        for (Object o : list(value)) {
            out.add((String) o);
        }
        return out;
    }

    static List<String> pairs(Object value) {
        List<String> out = new ArrayList<>();
        for (Object o : list(value)) {
            out.add(Arrays.toString(ints(o)));
        }
        return out;
    }

    static int[] ints(Object value) {
        return list(value).stream().mapToInt(o -> ((Long) o).intValue()).toArray();
    }

    static float[] floats(Object value) {
        List<Object> values = list(value);
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) ((Number) values.get(i)).doubleValue();
        }
        return out;
    }

    static boolean[] bools(Object value) {
        List<Object> values = list(value);
        boolean[] out = new boolean[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (Boolean) values.get(i);
        }
        return out;
    }
}
