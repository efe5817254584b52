package org.edgelingua.bridge;

import static org.edgelingua.bridge.GoldenVectors.maps;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How long the Java side takes on the golden texts: tokenization, and compression with the
 * recorded logits (tokenize + windows + probabilities + selection + output), best of 5 rounds
 * after a warm-up. Prints one JSON object. Usage: JavaTimings BUNDLE_DIR GOLDEN_JSON.
 */
public final class JavaTimings {
    private static final int ROUNDS = 5;

    private JavaTimings() {
    }

    public static void main(String[] args) throws IOException {
        MobileBundle bundle = MobileBundle.open(Path.of(args[0]), true);
        List<Map<String, Object>> cases = maps(Json.parseObject(
                Files.readString(Path.of(args[1]), StandardCharsets.UTF_8)).get("cases"));
        long bestTokenize = Long.MAX_VALUE;
        long bestCompress = Long.MAX_VALUE;
        int tokens = 0;
        for (int round = 0; round <= ROUNDS; round++) { // round 0 warms the JIT up
            long tokenize = 0;
            long compress = 0;
            tokens = 0;
            for (Map<String, Object> c : cases) {
                List<Map<String, Object>> contexts = maps(c.get("contexts"));
                List<String> texts = new ArrayList<>();
                long t0 = System.nanoTime();
                for (Map<String, Object> context : contexts) {
                    texts.add((String) context.get("text"));
                    tokens += bundle.tokenizer.encode((String) context.get("text")).size();
                }
                long t1 = System.nanoTime();
                Compressor compressor = Compressor.forBundle(bundle,
                        new GoldenVectors.RecordedModel(contexts));
                compressor.compress(texts, new Compressor.Options().rate(0.33));
                compress += System.nanoTime() - t1;
                tokenize += t1 - t0;
            }
            if (round > 0) {
                bestTokenize = Math.min(bestTokenize, tokenize);
                bestCompress = Math.min(bestCompress, compress);
            }
        }
        System.out.printf("{\"cases\": %d, \"tokens\": %d, \"java_tokenize_ms_total\": %.3f, "
                + "\"java_compress_ms_total_excluding_model\": %.3f}%n", cases.size(), tokens,
                bestTokenize / 1e6, bestCompress / 1e6);
    }
}
